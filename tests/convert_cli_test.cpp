// `frugal convert` end to end: the TinyStories-656K Hugging Face checkpoint converted by the binary, then
// scored by `frugal perplexity` (the value llama-perplexity gives on the same converted file, measured
// 2026-11-30 with the llama.cpp build in ~/.cache/frugal/llamacpp: PPL = 23.5417 +/- 3.41366), and errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace frugal {
namespace {

const std::string kModels = std::string(FRUGAL_SHARED_DIR) + "/models/";

struct Result {
  int rc = -1;
  std::string out;  // stdout and stderr
};

Result frugal(const std::string& args) {
  const std::string cmd = std::string("'") + FRUGAL_BINARY_PATH + "' " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(ConvertCli, ConvertsTinyStoriesAndPerplexityRuns) {
  const std::string out = ::testing::TempDir() + "frugal_convert_cli_" + std::to_string(::getpid()) + ".gguf";
  const Result c = frugal("convert '" + kModels + "tinystories-656k' '" + out + "' --outtype f32 -t 2");
  ASSERT_EQ(c.rc, 0) << c.out;
  EXPECT_NE(c.out.find("LlamaForCausalLM -> llama, tokenizer llama, vocab 2048"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("20 tensors: 20 x F32"), std::string::npos) << c.out;
  const Result p = frugal("perplexity -m '" + out + "' -f '" + kModels + "ppl_story.txt' -c 128 -t 2");
  EXPECT_EQ(p.rc, 0) << p.out;
  EXPECT_NE(p.out.find("PPL = 23.54"), std::string::npos) << p.out;
  std::remove(out.c_str());
}

TEST(ConvertCli, Errors) {
  const Result t = frugal("convert '" + kModels + "tinystories-656k' /tmp/never.gguf --outtype q4_k");
  EXPECT_EQ(t.rc, 1);
  EXPECT_NE(t.out.find("frugal convert: error: --outtype 'q4_k'"), std::string::npos) << t.out;
  const Result d = frugal("convert '" + kModels + "stories260K.gguf' /tmp/never.gguf");
  EXPECT_EQ(d.rc, 1);
  EXPECT_NE(d.out.find("Hugging Face checkpoint directory"), std::string::npos) << d.out;
  EXPECT_EQ(frugal("convert --help").rc, 0);
}

}  // namespace
}  // namespace frugal
