// Node-driven checks against a spawned `frugal serve --port 0`:
//   * tests/e2e/openai_client.mjs: the official OpenAI JavaScript client (tests/js, installed by
//     scripts/install-js-deps.sh) on chat/completions, streaming and not, usage, errors;
//   * scripts/load-test.mjs: 64 clients, mixed prompt lengths, mid-stream disconnects and bad bodies,
//     bounded count and time; the server stays up and returns to an idle engine with a full KV pool.
// Without node (or the npm packages) the tests fail when the CI environment variable is set and are
// skipped otherwise.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "support/serve_process.h"

namespace {

using frugal::test::kStoriesModel;
using frugal::test::ServeProcess;

const std::string kSource = FRUGAL_SOURCE_DIR;

// Runs a shell command; returns its exit code and fills *output with stdout+stderr.
int run_command(const std::string& cmd, std::string* output) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) output->append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool have_node(std::string* why) {
  std::string out;
  if (run_command("node --version", &out) != 0) {
    *why = "node is not installed";
    return false;
  }
  if (!std::filesystem::exists(kSource + "/tests/js/node_modules/openai/package.json")) {
    *why = "tests/js/node_modules/openai is missing (run scripts/install-js-deps.sh)";
    return false;
  }
  return true;
}

#define REQUIRE_NODE()                                                        \
  do {                                                                        \
    std::string why_;                                                         \
    if (!have_node(&why_)) {                                                  \
      if (std::getenv("CI")) FAIL() << why_;                                  \
      GTEST_SKIP() << why_;                                                   \
    }                                                                         \
  } while (0)

TEST(OpenAiE2e, OfficialJavaScriptClient) {
  REQUIRE_NODE();
  ServeProcess p;
  ASSERT_TRUE(p.start({"serve", "-m", kStoriesModel, "--port", "0", "-t", "1", "--api-key", "sk-e2e",
                       "--cost-per-hour", "1.5"}))
      << p.banner;
  std::string out;
  const int rc = run_command("node '" + kSource + "/tests/e2e/openai_client.mjs' http://127.0.0.1:" +
                                 std::to_string(p.port) + "/v1 sk-e2e",
                             &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("checks passed"), std::string::npos) << out;
  kill(p.pid, SIGTERM);
  EXPECT_EQ(p.wait_exit(30), 0);
}

TEST(OpenAiE2e, LoadTestSixtyFourClients) {
  REQUIRE_NODE();
  ServeProcess p;
  ASSERT_TRUE(p.start({"serve", "-m", kStoriesModel, "--port", "0", "-t", "1", "-c", "1024", "--max-seqs", "16",
                       "--api-key", "sk-load", "--cost-per-hour", "1"}))
      << p.banner;
  std::string out;
  const int rc = run_command("node '" + kSource + "/scripts/load-test.mjs' --url http://127.0.0.1:" +
                                 std::to_string(p.port) +
                                 " --key sk-load --clients 64 --requests 256 --max-seconds 300 --seed 1",
                             &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("load test: passed"), std::string::npos) << out;
  std::printf("%s", out.c_str());
  kill(p.pid, SIGTERM);
  EXPECT_EQ(p.wait_exit(30), 0);
}

}  // namespace
