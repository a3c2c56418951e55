// `frugal imatrix` / `frugal quantize --imatrix` with both imatrix formats, as a user runs them: GGUF by
// default, imatrix.dat by name or --output-format, either read back by content, llama-imatrix's own GGUF file
// (tests/data/llamacpp-imatrix) accepted, and a malformed file named in the error.
#include <gtest/gtest.h>

#include <string>

#include "support/run_cli.h"

namespace frugal {
namespace {

const std::string kStories = std::string(FRUGAL_SHARED_DIR) + "/models/stories260K.gguf";
const std::string kCalib = std::string(FRUGAL_SOURCE_DIR) + "/tests/data/calibration_stories.txt";
const std::string kLlamaImatrix =
    std::string(FRUGAL_SOURCE_DIR) + "/tests/data/llamacpp-imatrix/stories260K-c64.imatrix.gguf";

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }
std::string q(const std::string& s) { return "'" + s + "'"; }

CliResult imatrix(const std::string& out, const std::string& extra = "") {
  return run_frugal("imatrix -m " + q(kStories) + " -f " + q(kCalib) + " -c 64 -b 64 -t 1 " +
                    (out.empty() ? "" : "-o " + q(out)) + " " + extra);
}

TEST(ImatrixCli, WritesGgufByDefaultAndDatByNameOrFlag) {
  const std::string dir = cli_scratch_dir();
  const std::string g = dir + "/im.gguf", d = dir + "/im.dat", forced = dir + "/forced.gguf";
  CliResult r = imatrix(g);
  ASSERT_EQ(r.rc, 0) << r.all();
  EXPECT_TRUE(contains(r.out, "(GGUF, 36 tensors, 12 chunks of 64 tokens)")) << r.out;  // + output.weight
  EXPECT_EQ(slurp_file(g).substr(0, 4), "GGUF");
  EXPECT_FALSE(contains(r.err, "note: writing GGUF")) << r.err;
  r = imatrix(dir + "/im.bin");  // GGUF under another name: written, with a note
  ASSERT_EQ(r.rc, 0) << r.all();
  EXPECT_TRUE(contains(r.err, "note: writing GGUF to")) << r.err;
  EXPECT_EQ(slurp_file(dir + "/im.bin"), slurp_file(g));
  r = imatrix(d);
  ASSERT_EQ(r.rc, 0) << r.all();
  EXPECT_TRUE(contains(r.out, "(imatrix.dat, 36 tensors")) << r.out;
  EXPECT_NE(slurp_file(d).substr(0, 4), "GGUF");
  r = imatrix(forced, "--output-format dat");
  ASSERT_EQ(r.rc, 0) << r.all();
  EXPECT_EQ(slurp_file(forced), slurp_file(d));  // same statistics, same legacy bytes
  r = imatrix(dir + "/bad.bin", "--output-format bin");
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(contains(r.err, "--output-format")) << r.err;
  r = run_frugal("imatrix --help");
  EXPECT_TRUE(contains(r.out, "--output-format") && contains(r.out, "imatrix.gguf")) << r.out;

  // quantize reads both (by content: the GGUF file is passed under a .dat name too) and llama-imatrix's file.
  const std::string renamed = dir + "/gguf_named.dat";
  ASSERT_EQ(run_shell("cp " + q(g) + " " + q(renamed)).rc, 0);
  for (const std::string& im : {g, d, renamed, kLlamaImatrix}) {
    r = run_frugal("quantize -q -t 1 --imatrix " + q(im) + " " + q(kStories) + " " + q(dir + "/q.gguf") + " Q4_0");
    ASSERT_EQ(r.rc, 0) << im << ": " << r.all();
    EXPECT_TRUE(contains(r.out, "importance matrix used for")) << im << ": " << r.out;
    EXPECT_FALSE(contains(r.out + r.err, "no imatrix entry for 'blk.")) << im << ": " << r.all();
  }
}

// --in-file: llama-imatrix's GGUF file plus ours (.dat and GGUF) merged; nothing to do is an error.
TEST(ImatrixCli, InFilesAreMerged) {
  const std::string dir = cli_scratch_dir();
  const std::string ours = dir + "/ours.dat", merged = dir + "/merged.gguf", again = dir + "/again.gguf";
  ASSERT_EQ(imatrix(ours).rc, 0);
  CliResult r = run_frugal("imatrix --in-file " + q(kLlamaImatrix) + " --in-file " + q(ours) + " -o " + q(merged));
  ASSERT_EQ(r.rc, 0) << r.all();
  EXPECT_TRUE(contains(r.out, "(GGUF, 36 tensors, 24 chunks of 64 tokens, 2 input file(s) merged)")) << r.out;
  // The same merge plus new text in one call: three sources, 36 chunks.
  r = imatrix(again, "--in-file " + q(merged));
  ASSERT_EQ(r.rc, 0) << r.all();
  EXPECT_TRUE(contains(r.out, "(GGUF, 36 tensors, 36 chunks of 64 tokens, 1 input file(s) merged)")) << r.out;
  r = run_frugal("quantize -q -t 1 --imatrix " + q(again) + " " + q(kStories) + " " + q(dir + "/q.gguf") + " Q4_0");
  ASSERT_EQ(r.rc, 0) << r.all();
  r = run_frugal("imatrix -o " + q(dir + "/none.gguf"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(contains(r.err, "nothing to do")) << r.err;
  r = run_frugal("imatrix -m " + q(kStories) + " -o " + q(dir + "/none.gguf"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(contains(r.err, "-m and -f go together")) << r.err;
}

TEST(ImatrixCli, MalformedImatrixIsAnErrorNamingTheFile) {
  const std::string dir = cli_scratch_dir();
  // A model file passed as the imatrix (GGUF, but not an imatrix).
  CliResult r = run_frugal("quantize -q --imatrix " + q(kStories) + " " + q(kStories) + " " + q(dir + "/x.gguf") + " Q4_0");
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(contains(r.err, "frugal quantize: error: " + kStories +
                                  ": not a GGUF imatrix: key 'imatrix.chunk_count' is missing"))
      << r.err;
  // llama-imatrix's file cut short: the GGUF reader names the file.
  const std::string cut = dir + "/cut.gguf";
  ASSERT_EQ(run_shell("head -c 9000 " + q(kLlamaImatrix) + " > " + q(cut)).rc, 0);
  r = run_frugal("quantize -q --imatrix " + q(cut) + " " + q(kStories) + " " + q(dir + "/x.gguf") + " Q4_0");
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(contains(r.err, cut + ": ")) << r.err;
}

}  // namespace
}  // namespace frugal
