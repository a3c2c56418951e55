// End-to-end tests of the `frugal` binary: every subcommand is run as a user would (a child process),
// and its exit code, stdout and stderr are checked.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/npy.h"
#include "support/run_cli.h"

namespace frugal {
namespace {

const std::string kShared = FRUGAL_SHARED_DIR;
const std::string kStories = kShared + "/models/stories260K.gguf";
const std::string kGolden = kShared + "/golden/";

using Result = CliResult;

Result frugal(const std::string& args) { return run_frugal(args); }
const std::string& scratch_dir() { return cli_scratch_dir(); }
std::string slurp(const std::string& path) { return slurp_file(path); }

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string golden_tokens_csv(const std::string& name) {
  std::istringstream in(slurp(kGolden + name + ".tokens.txt"));
  std::string csv;
  int id;
  while (in >> id) csv += (csv.empty() ? "" : ",") + std::to_string(id);
  return csv;
}

TEST(Cli, HelpForEverySubcommandMentionsItsFlags) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"run", {"--model", "--prompt", "--file", "--n-predict", "--threads", "--ctx-size", "--temp", "--top-k", "--top-p",
               "--min-p", "--repeat-penalty", "--presence-penalty", "--frequency-penalty", "--seed", "--kv-type", "--isa"}},
      {"bench", {"--model", "--n-prompt", "--n-gen", "--threads", "--repetitions", "--output"}},
      {"inspect", {"model"}},
      {"tokenize", {"--model", "--prompt", "--file", "--ids", "--no-bos", "--parse-special"}},
      {"logits", {"--model", "--tokens", "--mode", "--kv-type", "--output"}},
      {"synth", {"--output", "--arch", "--n-embd", "--n-layer", "--n-head", "--n-head-kv", "--n-ff", "--n-vocab",
                 "--type", "--vocab-from", "--seed", "--tied"}},
  };
  for (const auto& [cmd, flags] : cases) {
    const Result r = frugal(cmd + " --help");
    EXPECT_EQ(r.rc, 0) << cmd << ": " << r.err;
    for (const std::string& flag : flags) EXPECT_TRUE(contains(r.out, flag)) << cmd << " --help lacks " << flag;
  }
  const Result top = frugal("--help");
  EXPECT_EQ(top.rc, 0);
  for (const char* cmd : {"run", "bench", "inspect", "tokenize", "logits", "synth"}) EXPECT_TRUE(contains(top.out, cmd));
}

TEST(Cli, BadModelPathIsAnErrorNamingThePath) {
  const std::string missing = scratch_dir() + "/no_such_model.gguf";
  for (const std::string& args : {"run -m '" + missing + "' -p hi -n 1", "inspect '" + missing + "'",
                                  "tokenize -m '" + missing + "' -p hi", "bench -m '" + missing + "' -p 1 -n 1 -r 1",
                                  "logits -m '" + missing + "' --tokens 1 -o '" + scratch_dir() + "/x.npy'"}) {
    const Result r = frugal(args);
    EXPECT_EQ(r.rc, 1) << args;
    EXPECT_TRUE(contains(r.err, missing)) << args << " -> " << r.err;
  }
}

TEST(Cli, BadArgumentsExitOneWithAMessage) {
  for (const std::string& args :
       {std::string("run -m ") + kStories + " -p hi --kv-type q9", std::string("run -m ") + kStories + " -p hi --top-p 2",
        std::string("bench -m ") + kStories + " -p 1,x", std::string("nosuchcommand"), std::string("run --no-such-flag"),
        std::string("logits -m ") + kStories + " --tokens 1,99999 -o " + scratch_dir() + "/y.npy"}) {
    const Result r = frugal(args);
    EXPECT_EQ(r.rc, 1) << args;
    EXPECT_FALSE(r.err.empty()) << args;
  }
}

TEST(Cli, TokenizeIds) {
  const Result r = frugal("tokenize -m " + kStories + " -p 'Once upon a time' --ids");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "[1, 403, 407, 261, 378]\n");
  const Result no_bos = frugal("tokenize -m " + kStories + " -p 'Once upon a time' --ids --no-bos");
  EXPECT_EQ(no_bos.out, "[403, 407, 261, 378]\n");
}

TEST(Cli, TokenizePiecesOnePerLine) {
  const Result r = frugal("tokenize -m " + kStories + " -p 'Once upon a time'");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "1\t<s>\n403\t Once\n407\t upon\n261\t a\n378\t time\n");
}

TEST(Cli, TokenizeWorksOnVocabOnlyFiles) {
  const Result r = frugal("tokenize -m " + kShared + "/vocab/ggml-vocab-qwen2.gguf -p 'Hello world' --ids");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.front(), '[');
  EXPECT_GT(r.out.size(), 4u);
}

TEST(Cli, RunGreedyStories) {
  const Result r = frugal("run -m " + kStories + " -p 'Once upon a time' -n 40 --temp 0 -t 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string expected = ", there was a little girl named Lily. She loved to play outside in the park.";
  EXPECT_EQ(r.out.substr(0, expected.size()), expected) << r.out;
  EXPECT_TRUE(contains(r.err, "load")) << r.err;
  EXPECT_TRUE(contains(r.err, "tokens/s")) << r.err;
}

TEST(Cli, RunSampledIsReproducibleWithASeed) {
  const std::string args = "run -m " + kStories + " -p 'Once upon a time' -n 24 --seed 7 -t 1";
  const Result a = frugal(args), b = frugal(args);
  ASSERT_EQ(a.rc, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_GT(a.out.size(), 10u);
}

// Repacked weight copies change speed and memory, never results: a Q4_0 model (repacked from 2 tokens on)
// gives the same greedy text with the copies off.
TEST(Cli, RunWithoutRepackedWeightsGivesTheSameText) {
  const std::string args = "run -m " + std::string(FRUGAL_SHARED_DIR) +
                           "/models/stories260K-Q4_0.gguf -p 'Once upon a time there was' -n 32 --temp 0 -t 2";
  const Result a = frugal(args), b = frugal(args + " --repack-mem 0");
  ASSERT_EQ(a.rc, 0) << a.err;
  ASSERT_EQ(b.rc, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_GT(a.out.size(), 10u);
  const Result bad = frugal(args + " --repack-mem -1");
  EXPECT_EQ(bad.rc, 1);
  EXPECT_TRUE(contains(bad.err, "--repack-mem")) << bad.err;
}

void check_logits(const std::string& name, const std::string& mode) {
  const std::string out = scratch_dir() + "/" + name + "." + mode + ".npy";
  const Result r = frugal("logits -m " + kGolden + name + ".gguf --tokens " + golden_tokens_csv(name) + " --mode " +
                          mode + " -t 2 -o " + out);
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::string raw = slurp(out);
  ASSERT_GE(raw.size(), 128u);
  EXPECT_EQ(raw.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (27, 512), }";
  const size_t hlen = (uint8_t)raw[8] | ((size_t)(uint8_t)raw[9] << 8);
  EXPECT_EQ((10 + hlen) % 64, 0u);
  EXPECT_EQ(raw[10 + hlen - 1], '\n');
  EXPECT_EQ(raw.substr(10, dict.size()), dict);
  EXPECT_EQ(raw.size(), 10 + hlen + 27 * 512 * 4);

  testing::NpyArray got, want;
  std::string err;
  ASSERT_TRUE(testing::read_npy_f32(out, &got, &err)) << err;
  ASSERT_TRUE(testing::read_npy_f32(kGolden + name + "." + mode + ".npy", &want, &err)) << err;
  ASSERT_EQ(got.shape, want.shape);
  const int64_t T = want.shape[0], V = want.shape[1];
  for (int64_t t = 0; t < T; ++t) {
    double num = 0, den = 0;
    for (int64_t v = 0; v < V; ++v) {
      const double d = (double)got.data[t * V + v] - want.data[t * V + v];
      num += d * d;
      den += (double)want.data[t * V + v] * want.data[t * V + v];
    }
    EXPECT_LE(num / den, 1e-9) << name << " " << mode << " position " << t;
  }
}

TEST(Cli, LogitsMatchGoldenBatch) { check_logits("llama-gqa-F32", "batch"); }
TEST(Cli, LogitsMatchGoldenSeq) { check_logits("llama-gqa-F32", "seq"); }

TEST(Cli, BenchJsonHasLlamaBenchFields) {
  const Result r = frugal("bench -m " + kStories + " -p 16 -n 4 -t 1 -r 2 -o json");
  ASSERT_EQ(r.rc, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  for (const char* field : {"model_filename", "model_type", "model_size", "model_n_params", "n_threads", "n_prompt",
                            "n_gen", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ts", "samples_ns",
                            "cpu_info", "build_commit", "test_time"}) {
    EXPECT_TRUE(j[0].contains(field)) << field;
  }
  EXPECT_EQ(j[0]["n_prompt"], 16);
  EXPECT_EQ(j[0]["n_gen"], 0);
  EXPECT_EQ(j[1]["n_prompt"], 0);
  EXPECT_EQ(j[1]["n_gen"], 4);
  EXPECT_EQ(j[0]["n_threads"], 1);
  EXPECT_EQ(j[0]["model_filename"], kStories);
  // F32 tensors of ~260K parameters, less than the file (which also holds the header and vocabulary).
  EXPECT_GT(j[0]["model_size"].get<uint64_t>(), 1000000u);
  EXPECT_LT(j[0]["model_size"].get<uint64_t>(), 1185376u);
  EXPECT_GT(j[0]["model_n_params"].get<uint64_t>(), 200000u);
  EXPECT_EQ(j[1]["samples_ts"].size(), 2u);
  EXPECT_GT(j[1]["avg_ts"].get<double>(), 0.0);
}

TEST(Cli, BenchMarkdownTable) {
  const Result r = frugal("bench -m " + kStories + " -p 8,16 -n 2 -t 1 -r 1");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "| model")) << r.out;
  EXPECT_TRUE(contains(r.out, "t/s")) << r.out;
  EXPECT_TRUE(contains(r.out, "pp8")) << r.out;
  EXPECT_TRUE(contains(r.out, "pp16")) << r.out;
  EXPECT_TRUE(contains(r.out, "tg2")) << r.out;
}

// Default load mode: models that fit in half the available memory (all of these) are read into
// anonymous memory, MoE or dense; --mmap / --no-mmap force either; both flags together are an error.
TEST(Cli, BenchLoadModeAutoReadsWhatFits) {
  const std::string moe = kGolden + "deepseek-moe-Q8_0.gguf";
  const struct {
    std::string model, flags, says;
  } cases[] = {{moe, "", "weights in anonymous memory"},
               {moe, " --mmap", "weights memory-mapped"},
               {kStories, "", "weights in anonymous memory"},
               {kStories, " --mmap", "weights memory-mapped"},
               {kStories, " --no-mmap", "weights in anonymous memory"}};
  for (const auto& c : cases) {
    const Result r = frugal("bench -m " + c.model + " -p 0 -n 2 -t 1 -r 1" + c.flags);
    ASSERT_EQ(r.rc, 0) << c.model << c.flags << ": " << r.err;
    EXPECT_TRUE(contains(r.err, c.says)) << c.model << c.flags << ": " << r.err;
  }
  EXPECT_NE(frugal("bench -m " + kStories + " -p 0 -n 2 --mmap --no-mmap").rc, 0);
}

TEST(Cli, InspectStories) {
  const Result r = frugal("inspect " + kStories);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "48 tensors")) << r.out;
  EXPECT_TRUE(contains(r.out, "tensors (48):")) << r.out;
  EXPECT_TRUE(contains(r.out, "blk.4.ffn_down.weight")) << r.out;
  EXPECT_TRUE(contains(r.out, "general.architecture")) << r.out;
  EXPECT_TRUE(contains(r.out, "(512 items)")) << r.out;  // the 512-token vocabulary array is abbreviated
  EXPECT_TRUE(contains(r.out, "every tensor type is supported")) << r.out;
  int rows = 0;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) rows += contains(line, ".weight") ? 1 : 0;
  EXPECT_EQ(rows, 48);
}

TEST(Cli, SynthWritesAModelThatRuns) {
  const std::string out = scratch_dir() + "/synth.gguf";
  const Result s = frugal("synth -o " + out + " --n-embd 64 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 128 --type Q8_0 " +
                          "--vocab-from " + kStories + " --seed 3");
  ASSERT_EQ(s.rc, 0) << s.err;
  const Result i = frugal("inspect " + out);
  ASSERT_EQ(i.rc, 0) << i.err;
  EXPECT_TRUE(contains(i.out, "Q8_0")) << i.out;
  const Result r = frugal("run -m " + out + " -p 'Once upon a time' -n 8 --temp 0 -t 1");
  EXPECT_EQ(r.rc, 0) << r.err;
}

}  // namespace
}  // namespace frugal
