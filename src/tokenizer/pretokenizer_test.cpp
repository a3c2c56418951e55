// Pre-tokenizer split semantics and UTF-8 helpers, on hand-computed examples.
#include "tokenizer/pretokenizer.h"

#include <gtest/gtest.h>

#include "tokenizer/flat_map.h"
#include "tokenizer/utf8.h"

namespace frugal {
namespace {

std::vector<std::string> split(PreKind kind, const std::string& text) {
  auto pt = PreTokenizer::create(pre_kind_patterns(kind));
  EXPECT_TRUE(pt.ok()) << pt.status().message();
  std::vector<std::string> out;
  if (!pt.ok()) return out;
  size_t covered = 0;
  for (const auto& [off, len] : (*pt)->split(text)) {
    EXPECT_EQ(off, covered) << "pieces must tile the text";
    covered = off + len;
    out.push_back(text.substr(off, len));
  }
  EXPECT_EQ(covered, text.size());
  return out;
}

using V = std::vector<std::string>;

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split(PreKind::kGpt2, "Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(split(PreKind::kGpt2, "I've 12 cats!!"), (V{"I", "'ve", " 12", " cats", "!!"}));
  // \s+(?!\S): a whitespace run before a word leaves its last space to the word.
  EXPECT_EQ(split(PreKind::kGpt2, "a   b"), (V{"a", "  ", " b"}));
  // A single tab before a letter matches nothing and is kept as its own (gap) piece.
  EXPECT_EQ(split(PreKind::kGpt2, "a\tb"), (V{"a", "\t", "b"}));
  EXPECT_EQ(split(PreKind::kGpt2, "end  "), (V{"end", "  "}));
  EXPECT_EQ(split(PreKind::kGpt2, ""), V{});
}

TEST(PreTokenizer, Llama3AndQwen2Digits) {
  EXPECT_EQ(split(PreKind::kLlama3, "12345"), (V{"123", "45"}));
  EXPECT_EQ(split(PreKind::kQwen2, "12345"), (V{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(split(PreKind::kLlama3, "I'M here\n\n x"), (V{"I", "'M", " here", "\n\n", " x"}));
  // U+3000 (ideographic space) is whitespace; U+200B (zero width space) is not.
  EXPECT_EQ(split(PreKind::kQwen2, "a\xE3\x80\x80" "b"), (V{"a", "\xE3\x80\x80" "b"}));
  EXPECT_EQ(split(PreKind::kQwen2, "a\xE2\x80\x8B"), (V{"a", "\xE2\x80\x8B"}));
}

TEST(PreTokenizer, DeepseekV3) {
  EXPECT_EQ(split(PreKind::kDeepseekV3, "abc12345def"), (V{"abc", "123", "45", "def"}));
  // CJK and kana runs are isolated before the main pass.
  EXPECT_EQ(split(PreKind::kDeepseekV3, "ab\xE6\x88\x91\xE6\x83\xB3" "cd"), (V{"ab", "\xE6\x88\x91\xE6\x83\xB3", "cd"}));
  // One ASCII punctuation character glues to a following ASCII word.
  EXPECT_EQ(split(PreKind::kDeepseekV3, "x.foo"), (V{"x", ".foo"}));
  // llama.cpp treats '~' as neither punctuation nor symbol: it may lead a letter run ...
  EXPECT_EQ(split(PreKind::kDeepseekV3, "~\xC3\xA9"), (V{"~\xC3\xA9"}));
  // ... and does not join a punctuation run (" ~~" is space + gap, "!!" is punctuation).
  EXPECT_EQ(split(PreKind::kDeepseekV3, "!! ~~"), (V{"!!", " ", "~~"}));
}

TEST(PreTokenizer, DeepseekLlmAndCoder) {
  EXPECT_EQ(split(PreKind::kDeepseekLlm, "Hi  "), (V{"Hi", "  "}));
  EXPECT_EQ(split(PreKind::kDeepseekLlm, "Hi\n"), (V{"Hi", "\n"}));
  EXPECT_EQ(split(PreKind::kDeepseekLlm, "ab12cd"), (V{"ab", "12", "cd"}));
  EXPECT_EQ(split(PreKind::kDeepseekCoder, "ab12"), (V{"ab", "1", "2"}));
  EXPECT_EQ(split(PreKind::kDeepseekCoder, "a\r\nb"), (V{"a", "\r", "\n", "b"}));
}

TEST(PreTokenizer, DollarIsEndOfPieceOnly) {
  // ECMAScript `$`: end of the subject only, not before a final newline (PCRE2's default).
  auto pt = PreTokenizer::create({"a+$"});
  ASSERT_TRUE(pt.ok());
  EXPECT_EQ((*pt)->split("aa\n").size(), 1u);
  EXPECT_EQ((*pt)->split("baa").size(), 2u);
}

TEST(PreTokenizer, PreTypeTable) {
  ASSERT_NE(find_pre_type("deepseek-r1-qwen"), nullptr);
  EXPECT_EQ(find_pre_type("deepseek-r1-qwen")->kind, PreKind::kQwen2);
  EXPECT_TRUE(find_pre_type("llama-bpe")->ignore_merges);
  EXPECT_TRUE(find_pre_type("llama3")->add_bos);
  EXPECT_FALSE(find_pre_type("deepseek-v3")->clean_spaces);
  EXPECT_EQ(find_pre_type("nonsense"), nullptr);
  EXPECT_NE(supported_pre_type_names().find("deepseek-coder"), std::string::npos);
}

TEST(PreTokenizer, BadPatternIsAnError) {
  auto pt = PreTokenizer::create({"(unclosed"});
  ASSERT_FALSE(pt.ok());
  EXPECT_NE(pt.status().message().find("(unclosed"), std::string::npos);
}

TEST(Utf8, LenientDecodeLikeLlamaCpp) {
  EXPECT_EQ(utf8::decode_lenient("a\xC3\xA9"), (std::vector<uint32_t>{'a', 0xE9}));
  EXPECT_EQ(utf8::decode_lenient("\x80" "a"), (std::vector<uint32_t>{0xFFFD, 'a'}));
  EXPECT_EQ(utf8::decode_lenient("\xE2\x82"), (std::vector<uint32_t>{0xFFFD, 0xFFFD}));
  EXPECT_EQ(utf8::decode_lenient("\xC0\x80"), std::vector<uint32_t>{0});           // overlong accepted
  EXPECT_EQ(utf8::decode_lenient("\xED\xA0\x80"), std::vector<uint32_t>{0xD800});  // surrogate accepted
}

TEST(Utf8, StrictValidation) {
  EXPECT_TRUE(utf8::is_valid("plain \xE2\x82\xAC \xF0\x9F\xA6\x99"));
  EXPECT_FALSE(utf8::is_valid("\xC0\x80"));
  EXPECT_FALSE(utf8::is_valid("\xED\xA0\x80"));
  EXPECT_FALSE(utf8::is_valid("\xF4\x90\x80\x80"));
  EXPECT_FALSE(utf8::is_valid("\xE2\x82"));
}

TEST(Utf8, TakeComplete) {
  std::string p = "ab\xE2\x82";
  EXPECT_EQ(utf8::take_complete(p, false), "ab");
  EXPECT_EQ(p, "\xE2\x82");
  p += "\xAC";
  EXPECT_EQ(utf8::take_complete(p, false), "\xE2\x82\xAC");
  EXPECT_TRUE(p.empty());
  p = "\xE2\x82x";  // truncated sequence followed by ASCII: one U+FFFD for the maximal subpart
  EXPECT_EQ(utf8::take_complete(p, false), "\xEF\xBF\xBDx");
  p = "\xF0\x9F";
  EXPECT_EQ(utf8::take_complete(p, true), "\xEF\xBF\xBD");
}

TEST(Utf8, ByteMapRoundTrip) {
  const auto& m = utf8::byte_to_unicode();
  EXPECT_EQ(m[' '], "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(m['\n'], "\xC4\x8A");  // U+010A 'Ċ'
  EXPECT_EQ(m['A'], "A");
  for (int b = 0; b < 256; ++b) {
    const auto cpts = utf8::decode_lenient(m[b]);
    ASSERT_EQ(cpts.size(), 1u);
    EXPECT_EQ(utf8::unicode_to_byte(cpts[0]), b);
  }
  EXPECT_EQ(utf8::unicode_to_byte(0x4E00), -1);
}

TEST(FlatMap, StringIdMapKeepsFirstAndFinds) {
  std::vector<std::string> keys;
  for (int i = 0; i < 5000; ++i) keys.push_back("k" + std::to_string(i * 7919));
  StringIdMap m;
  for (int i = 0; i < 5000; ++i) EXPECT_EQ(m.insert(keys[i], i), i);
  EXPECT_EQ(m.insert(keys[42], 9999), 42);
  EXPECT_EQ(m.size(), 5000u);
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(m.find(keys[i]), i);
  EXPECT_EQ(m.find("absent"), StringIdMap::kAbsent);
  EXPECT_EQ(m.find(""), StringIdMap::kAbsent);
  U64Map<int> u;
  for (uint64_t k = 0; k < 3000; ++k) EXPECT_TRUE(u.insert(k * 0x100000001ULL, static_cast<int>(k)));
  EXPECT_FALSE(u.insert(5 * 0x100000001ULL, -1));
  ASSERT_NE(u.find(5 * 0x100000001ULL), nullptr);
  EXPECT_EQ(*u.find(5 * 0x100000001ULL), 5);
  EXPECT_EQ(u.find(7), nullptr);
}

}  // namespace
}  // namespace frugal
