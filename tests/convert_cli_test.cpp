// `frugal convert` end to end: the TinyStories-656K Hugging Face checkpoint converted by the binary, then
// scored by `frugal perplexity` (the value llama-perplexity gives on the same converted file, measured
// 2026-11-30 with the llama.cpp build in ~/.cache/frugal/llamacpp: PPL = 23.5417 +/- 3.41366), and errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "support/run_cli.h"

namespace frugal {
namespace {

const std::string kModels = std::string(FRUGAL_SHARED_DIR) + "/models/";

TEST(ConvertCli, ConvertsTinyStoriesAndPerplexityRuns) {
  const std::string out = ::testing::TempDir() + "frugal_convert_cli_" + std::to_string(::getpid()) + ".gguf";
  const CliResult c = run_frugal("convert '" + kModels + "tinystories-656k' '" + out + "' --outtype f32 -t 2");
  ASSERT_EQ(c.rc, 0) << c.all();
  EXPECT_NE(c.all().find("LlamaForCausalLM -> llama, tokenizer llama, vocab 2048"), std::string::npos) << c.all();
  EXPECT_NE(c.all().find("20 tensors: 20 x F32"), std::string::npos) << c.all();
  const CliResult p = run_frugal("perplexity -m '" + out + "' -f '" + kModels + "ppl_story.txt' -c 128 -t 2");
  EXPECT_EQ(p.rc, 0) << p.all();
  EXPECT_NE(p.all().find("PPL = 23.54"), std::string::npos) << p.all();
  std::remove(out.c_str());
}

TEST(ConvertCli, Errors) {
  const CliResult t = run_frugal("convert '" + kModels + "tinystories-656k' /tmp/never.gguf --outtype q4_k");
  EXPECT_EQ(t.rc, 1);
  EXPECT_NE(t.all().find("frugal convert: error: --outtype 'q4_k'"), std::string::npos) << t.all();
  const CliResult d = run_frugal("convert '" + kModels + "stories260K.gguf' /tmp/never.gguf");
  EXPECT_EQ(d.rc, 1);
  EXPECT_NE(d.all().find("Hugging Face checkpoint directory"), std::string::npos) << d.all();
  EXPECT_EQ(run_frugal("convert --help").rc, 0);
}

}  // namespace
}  // namespace frugal
