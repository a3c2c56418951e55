// Tokenizer behaviour on real vocabularies (stories260K, DeepSeek-V3, Qwen2, LLaMA SPM) and on small
// vocabularies written in memory with GgufWriter.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <random>

#include "gguf/gguf_writer.h"
#include "tokenizer/tokenizer_test_util.h"
#include "tokenizer/utf8.h"

namespace frugal {
namespace {

using tok_test::load_vocab;

constexpr const char* kStories = "models/stories260K.gguf";
constexpr const char* kDeepseekV3 = "vocab/ggml-vocab-deepseek-v3.gguf";
constexpr const char* kQwen2 = "vocab/ggml-vocab-qwen2.gguf";
constexpr const char* kLlamaSpm = "vocab/ggml-vocab-llama-spm.gguf";
// <｜begin▁of▁sentence｜> and <｜end▁of▁sentence｜>: U+FF5C and U+2581 spelled as bytes.
const std::string kBos = "<\xEF\xBD\x9C" "begin\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>";
const std::string kEos = "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>";

TEST(Stories260K, OnceUponATime) {
  const Tokenizer* tok = load_vocab(kStories);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->model(), "llama");
  EXPECT_EQ(tok->n_vocab(), 512);
  EXPECT_EQ(tok->encode("Once upon a time", true, false), (std::vector<int32_t>{1, 403, 407, 261, 378}));
}

TEST(Stories260K, GoldenPrompt) {
  const Tokenizer* tok = load_vocab(kStories);
  ASSERT_NE(tok, nullptr);
  const std::string text = "Once upon a time, Tom saw 3 big red birds.\nThey sang.";
  const std::vector<int32_t> want = {1,   403, 407, 261, 378, 432, 274, 287, 394, 410, 472, 370, 352, 266,
                                     268, 315, 418, 419, 426, 13,  434, 260, 422, 296, 416, 428, 426};
  const std::vector<int32_t> ids = tok->encode(text, true, false);
  EXPECT_EQ(ids, want);
  EXPECT_EQ(tok->decode(ids), text);  // BOS renders as "", the prefix space is removed
  EXPECT_EQ(tok->token_to_piece(13), "\n");  // byte token <0x0A>
}

TEST(Stories260K, LeadingSpaceRuleAndContinuation) {
  const Tokenizer* tok = load_vocab(kStories);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->token_to_piece(403), " Once");
  EXPECT_EQ(tok->decode({403, 407}), "Once upon");
  EXPECT_EQ(tok->decode({1, 403, 407}), "Once upon");
  EXPECT_EQ(tok->decode({407, 261}, false, /*continuation=*/true), " upon a");
  EXPECT_EQ(tok->decode({1, 403}, /*render_special=*/true), "<s>Once");
  EXPECT_EQ(tok->token_to_piece(1), "");
  EXPECT_EQ(tok->token_to_piece(1, true), "<s>");
  EXPECT_TRUE(tok->is_eog(tok->eos()));
  EXPECT_FALSE(tok->is_eog(403));
}

TEST(SpecialTokens, DeepseekV3ChatMarkers) {
  const Tokenizer* tok = load_vocab(kDeepseekV3);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->bos(), 0);
  EXPECT_EQ(tok->eos(), 1);
  EXPECT_EQ(tok->encode(kBos, false, true), std::vector<int32_t>{0});
  const std::vector<int32_t> as_text = tok->encode(kBos, false, false);
  EXPECT_GT(as_text.size(), 1u);
  for (int32_t id : as_text) EXPECT_NE(id, 0);
  EXPECT_EQ(tok->decode(as_text), kBos);  // ordinary text round-trips

  const std::string user = "<\xEF\xBD\x9CUser\xEF\xBD\x9C>", assistant = "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>";
  const int32_t user_id = tok->token_id(user), assistant_id = tok->token_id(assistant);
  ASSERT_NE(user_id, Tokenizer::kNoToken);
  ASSERT_NE(assistant_id, Tokenizer::kNoToken);
  const std::vector<int32_t> chat = tok->encode(user + "Hi" + assistant, /*add_special=*/true, true);
  ASSERT_EQ(chat.size(), 4u);
  EXPECT_EQ(chat[0], 0);  // add_bos_token = true
  EXPECT_EQ(chat[1], user_id);
  EXPECT_EQ(chat[2], tok->encode("Hi", false, false).at(0));
  EXPECT_EQ(chat[3], assistant_id);
  EXPECT_EQ(tok->decode(chat), "Hi");
  EXPECT_EQ(tok->decode(chat, /*render_special=*/true), kBos + user + "Hi" + assistant);
}

TEST(SpecialTokens, SpecialTextSplitsNeighbouringText) {
  const Tokenizer* tok = load_vocab(kQwen2);
  ASSERT_NE(tok, nullptr);
  const int32_t im_start = tok->token_id("<|im_start|>");
  ASSERT_NE(im_start, Tokenizer::kNoToken);
  const std::vector<int32_t> ids = tok->encode("a<|im_start|>b<|im_start|>", false, true);
  EXPECT_EQ(ids, (std::vector<int32_t>{tok->encode("a", false, false)[0], im_start,
                                       tok->encode("b", false, false)[0], im_start}));
  EXPECT_EQ(tok->encode("<|im_start|>", false, false).size(), 6u);
}

TEST(SpecialTokens, SpmPrefixAfterSpecialToken) {
  const Tokenizer* tok = load_vocab(kLlamaSpm);
  ASSERT_NE(tok, nullptr);
  // "hi" after a special token gets the SentencePiece space prefix, exactly as at the start of the text.
  const std::vector<int32_t> alone = tok->encode("hi", false, false);
  std::vector<int32_t> want = {1};
  want.insert(want.end(), alone.begin(), alone.end());
  EXPECT_EQ(tok->encode("<s>hi", false, true), want);
  EXPECT_NE(tok->encode("<s>hi", false, false)[0], 1);
}

TEST(Eog, ContainsEosAndDeepseekEndOfSentence) {
  const Tokenizer* v3 = load_vocab(kDeepseekV3);
  ASSERT_NE(v3, nullptr);
  EXPECT_TRUE(v3->is_eog(v3->eos()));
  EXPECT_TRUE(v3->is_eog(v3->token_id(kEos)));
  EXPECT_FALSE(v3->is_eog(v3->bos()));
  const Tokenizer* qwen = load_vocab(kQwen2);
  ASSERT_NE(qwen, nullptr);
  EXPECT_TRUE(qwen->is_eog(qwen->eos()));
  EXPECT_TRUE(qwen->is_eog(qwen->token_id("<|im_end|>")));
  EXPECT_FALSE(qwen->is_eog(qwen->token_id("<|im_start|>")));
}

// Concatenated push() output must equal decode() and every push() must be well-formed UTF-8.
void expect_stream_matches(const Tokenizer& tok, const std::vector<int32_t>& ids, bool continuation) {
  StreamingDetokenizer sd(tok, false, continuation);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string part = sd.push(id);
    EXPECT_TRUE(utf8::is_valid(part)) << "push output is not valid UTF-8";
    streamed += part;
  }
  const std::string tail = sd.flush();
  EXPECT_TRUE(utf8::is_valid(tail));
  streamed += tail;
  std::string whole = tok.decode(ids, false, continuation);
  // For decodes that are not valid UTF-8, the stream shows each ill-formed subpart as U+FFFD.
  std::string expect = utf8::take_complete(whole, /*final=*/true);
  EXPECT_EQ(streamed, expect) << "ids: " << tok_test::ids_string(ids);
}

TEST(Streaming, MatchesDecodeOnVocabTestStrings) {
  for (const char* rel : {"vocab/ggml-vocab-deepseek-v3.gguf", "vocab/ggml-vocab-qwen2.gguf",
                          "vocab/ggml-vocab-llama-spm.gguf", "models/stories260K.gguf"}) {
    const Tokenizer* tok = load_vocab(rel);
    ASSERT_NE(tok, nullptr) << rel;
    for (const auto& c : tok_test::read_vocab_cases("vocab/ggml-vocab-deepseek-llm.gguf")) {
      const std::vector<int32_t> ids = tok->encode(c.text, true, false);
      expect_stream_matches(*tok, ids, false);
      expect_stream_matches(*tok, ids, true);
      EXPECT_EQ(tok->decode(ids), c.text) << rel;
    }
  }
}

TEST(Streaming, HoldsBackSplitCodePoints) {
  const Tokenizer* tok = load_vocab(kStories);
  ASSERT_NE(tok, nullptr);
  // The llama emoji is not in the 512-token vocabulary: it becomes four byte-fallback tokens.
  const std::vector<int32_t> ids = tok->encode("\xF0\x9F\xA6\x99!", false, false);
  StreamingDetokenizer sd(*tok);
  std::vector<std::string> parts;
  for (int32_t id : ids) parts.push_back(sd.push(id));
  ASSERT_GE(parts.size(), 5u);
  size_t first_text = 0;
  while (first_text < parts.size() && parts[first_text].empty()) ++first_text;
  ASSERT_LT(first_text, parts.size());
  EXPECT_EQ(parts[first_text].substr(0, 4), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(sd.flush(), "");
}

TEST(Streaming, RandomIdsNeverEmitInvalidUtf8) {
  std::mt19937 rng(1234);
  for (const char* rel : {kDeepseekV3, kQwen2, kStories}) {
    const Tokenizer* tok = load_vocab(rel);
    ASSERT_NE(tok, nullptr);
    std::uniform_int_distribution<int32_t> pick(0, tok->n_vocab() - 1);
    for (int seq = 0; seq < 200; ++seq) {
      std::vector<int32_t> ids(1 + seq % 17);
      for (int32_t& id : ids) id = pick(rng);
      expect_stream_matches(*tok, ids, seq % 2 == 1);
    }
  }
}

TEST(Streaming, FlushReplacesIncompleteTail) {
  const Tokenizer* tok = load_vocab(kStories);
  ASSERT_NE(tok, nullptr);
  StreamingDetokenizer sd(*tok);
  const int32_t f0 = tok->token_id("<0xF0>"), x9f = tok->token_id("<0x9F>");
  ASSERT_NE(f0, Tokenizer::kNoToken);
  EXPECT_EQ(sd.push(f0), "");
  EXPECT_EQ(sd.push(x9f), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(sd.push(tok->token_id("<0xFF>")), "\xEF\xBF\xBD");  // can never start a sequence
}

// ---- small vocabularies written in memory ----

std::unique_ptr<GgufFile> make_gguf(const GgufWriter& w, std::vector<uint8_t>& storage) {
  storage = w.to_bytes();
  auto f = GgufFile::from_memory(storage.data(), storage.size(), "mem.gguf");
  EXPECT_TRUE(f.ok()) << f.status().message();
  return f.ok() ? std::move(f).value() : nullptr;
}

// A byte-level BPE vocabulary: the 256 byte stand-ins, then `extra` tokens, with `merges`.
GgufWriter bpe_writer(const std::string& pre, const std::vector<std::string>& extra,
                      const std::vector<std::string>& merges) {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", pre);
  std::vector<std::string> tokens(utf8::byte_to_unicode().begin(), utf8::byte_to_unicode().end());
  tokens.insert(tokens.end(), extra.begin(), extra.end());
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_string_array("tokenizer.ggml.merges", merges);
  w.set_u32("tokenizer.ggml.bos_token_id", 0);
  w.set_u32("tokenizer.ggml.eos_token_id", 0);
  return w;
}

TEST(SyntheticBpe, MergesApplyByRank) {
  std::vector<uint8_t> buf;
  // ids: 256 "ab", 257 "bc", 258 "abc"
  auto f = make_gguf(bpe_writer("gpt-2", {"ab", "bc", "abc"}, {"a b", "b c", "ab c"}), buf);
  ASSERT_NE(f, nullptr);
  auto tok = Tokenizer::from_gguf(*f);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_EQ((*tok)->encode("abc", false, false), std::vector<int32_t>{258});  // a b -> ab, ab c -> abc
  EXPECT_EQ((*tok)->encode("bc", false, false), std::vector<int32_t>{257});
  // " abc": the space (byte 0x20 -> 'Ġ') has no merges; the regex keeps " abc" as one piece.
  EXPECT_EQ((*tok)->encode(" abc", false, false), (std::vector<int32_t>{0x20, 258}));

  auto f2 = make_gguf(bpe_writer("gpt-2", {"ab", "bc", "abc"}, {"b c", "a b", "ab c"}), buf);
  auto tok2 = Tokenizer::from_gguf(*f2);
  ASSERT_TRUE(tok2.ok());
  EXPECT_EQ((*tok2)->encode("abc", false, false), (std::vector<int32_t>{'a', 257}));  // b c wins; "a bc" has no rule
}

TEST(SyntheticBpe, UnknownModelAndPreAreErrors) {
  std::vector<uint8_t> buf;
  auto f = make_gguf(bpe_writer("no-such-pre", {}, {}), buf);
  auto tok = Tokenizer::from_gguf(*f);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(tok.status().message().find("'no-such-pre'"), std::string::npos) << tok.status().message();
  EXPECT_NE(tok.status().message().find("deepseek-v3"), std::string::npos) << tok.status().message();

  GgufWriter w = bpe_writer("gpt-2", {}, {});
  w.set_string("tokenizer.ggml.model", "bert");
  auto f2 = make_gguf(w, buf);
  auto tok2 = Tokenizer::from_gguf(*f2);
  ASSERT_FALSE(tok2.ok());
  EXPECT_NE(tok2.status().message().find("'bert'"), std::string::npos) << tok2.status().message();
  EXPECT_NE(tok2.status().message().find("llama, gpt2"), std::string::npos);
}

TEST(SyntheticBpe, InvalidUtf8BecomesReplacementCharacter) {
  std::vector<uint8_t> buf;
  auto f = make_gguf(bpe_writer("gpt-2", {}, {}), buf);
  auto tok = Tokenizer::from_gguf(*f);
  ASSERT_TRUE(tok.ok());
  // A stray continuation byte is tokenized as the bytes of U+FFFD (EF BF BD), like llama.cpp.
  EXPECT_EQ((*tok)->encode("a\x80", false, false), (std::vector<int32_t>{'a', 0xEF, 0xBF, 0xBD}));
}

TEST(SyntheticSpm, ScoresAndByteFallback) {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "llama");
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.push_back(name);
    scores.push_back(0);
    types.push_back(6);
  }
  const std::string sp = "\xE2\x96\x81";
  for (const auto& [t, s] : std::vector<std::pair<std::string, float>>{
           {sp, -1}, {"a", -2}, {"b", -2}, {"ab", -3}, {sp + "a", -4}, {sp + "ab", -5}}) {
    tokens.push_back(t);
    scores.push_back(s);
    types.push_back(1);
  }
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  std::vector<uint8_t> buf;
  auto f = make_gguf(w, buf);
  auto tok = Tokenizer::from_gguf(*f);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const int32_t base = 3 + 256;  // ids of "▁", "a", "b", "ab", "▁a", "▁ab"
  // "▁ab": the best-scoring pair "ab" (-3) beats "▁a" (-4); then "▁"+"ab" = "▁ab" (-5) merges.
  EXPECT_EQ((*tok)->encode("ab", false, false), std::vector<int32_t>{base + 5});
  // "é" is not in the vocabulary: byte fallback to <0xC3> <0xA9>.
  EXPECT_EQ((*tok)->encode("a\xC3\xA9", true, false), (std::vector<int32_t>{1, base + 4, 3 + 0xC3, 3 + 0xA9}));
  EXPECT_EQ((*tok)->decode((*tok)->encode("ab a\xC3\xA9", true, false)), "ab a\xC3\xA9");
}

}  // namespace
}  // namespace frugal
