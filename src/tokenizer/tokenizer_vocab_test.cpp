// llama.cpp's tokenizer test vectors (../shared/vocab): exact ids for every test string, and round trips.
#include <gtest/gtest.h>

#include "tokenizer/tokenizer_test_util.h"

namespace frugal {
namespace {

using tok_test::ids_string;
using tok_test::load_vocab;
using tok_test::read_vocab_cases;

struct VocabParam {
  const char* file;
  const char* model;
  const char* pre;
};

void PrintTo(const VocabParam& p, std::ostream* os) { *os << p.file; }

class VocabVectors : public ::testing::TestWithParam<VocabParam> {};

TEST_P(VocabVectors, EncodeMatchesLlamaCpp) {
  const std::string rel = std::string("vocab/") + GetParam().file;
  const Tokenizer* tok = load_vocab(rel);
  ASSERT_NE(tok, nullptr) << "cannot load " << rel;
  EXPECT_EQ(tok->model(), GetParam().model);
  EXPECT_EQ(tok->pre(), GetParam().pre);
  const auto cases = read_vocab_cases(rel);
  ASSERT_EQ(cases.size(), 46u) << rel << ": .inp/.out count mismatch or unreadable";
  size_t passed = 0;
  std::string failures;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::vector<int32_t> got = tok->encode(cases[i].text, /*add_special=*/false, /*parse_special=*/false);
    if (got == cases[i].ids) {
      ++passed;
    } else {
      failures += "\n  case " + std::to_string(i) + " '" + cases[i].text + "'\n    want " +
                  ids_string(cases[i].ids) + "\n    got  " + ids_string(got);
    }
  }
  EXPECT_EQ(passed, cases.size()) << rel << ": " << passed << "/" << cases.size() << " passed" << failures;
}

TEST_P(VocabVectors, DecodeRoundTrips) {
  const std::string rel = std::string("vocab/") + GetParam().file;
  const Tokenizer* tok = load_vocab(rel);
  ASSERT_NE(tok, nullptr);
  size_t passed = 0, total = 0;
  std::string failures;
  for (const auto& c : read_vocab_cases(rel)) {
    ++total;
    // SPM adds a leading space on encode; decode() of a sequence from the start removes it again.
    const std::string back = tok->decode(tok->encode(c.text, false, false));
    if (back == c.text) {
      ++passed;
    } else {
      failures += "\n  '" + c.text + "' -> '" + back + "'";
    }
  }
  EXPECT_EQ(passed, total) << rel << failures;
}

INSTANTIATE_TEST_SUITE_P(
    All, VocabVectors,
    ::testing::Values(VocabParam{"ggml-vocab-deepseek-llm.gguf", "gpt2", "deepseek-llm"},
                      VocabParam{"ggml-vocab-deepseek-coder.gguf", "gpt2", "deepseek-coder"},
                      VocabParam{"ggml-vocab-deepseek-v3.gguf", "gpt2", "deepseek-v3"},
                      VocabParam{"ggml-vocab-qwen2.gguf", "gpt2", "qwen2"},
                      VocabParam{"ggml-vocab-gpt-2.gguf", "gpt2", "gpt-2"},
                      VocabParam{"ggml-vocab-llama-spm.gguf", "llama", "default"}),
    [](const ::testing::TestParamInfo<VocabParam>& info) {
      std::string n = info.param.pre;
      n += info.param.model[0] == 'l' ? "_spm" : "";
      for (char& c : n) c = (c == '-') ? '_' : c;
      return n;
    });

}  // namespace
}  // namespace frugal
