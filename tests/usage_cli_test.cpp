// `frugal usage` end to end: a ledger written through UsageLedger, read back by the binary as a table
// and as JSON.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "server/sqlite_db.h"
#include "server/usage_ledger.h"
#include "support/run_cli.h"

namespace frugal {
namespace {

using Result = CliResult;

Result frugal(const std::string& args) { return run_frugal(args); }
const std::string& scratch_dir() { return cli_scratch_dir(); }

UsageRecord rec(const std::string& key, double t, int64_t prompt, int64_t cached, int64_t completion, double cost) {
  UsageRecord r;
  r.key_name = key;
  r.time_s = t;
  r.route = "/v1/completions";
  r.prompt_tokens = prompt;
  r.cached_tokens = cached;
  r.completion_tokens = completion;
  r.cost_usd = cost;
  r.finish_reason = "length";
  return r;
}

std::string write_ledger() {
  const std::string path = scratch_dir() + "/usage.db";
  std::remove(path.c_str());
  const double now = unix_seconds();
  StatusOr<std::unique_ptr<UsageLedger>> l = UsageLedger::open(path);
  EXPECT_TRUE(l.ok()) << l.status().message();
  (*l)->record(rec("alice", now - 3600, 100, 40, 20, 0.5));
  (*l)->record(rec("alice", now - 60, 10, 0, 5, 0.25));
  (*l)->record(rec("bob", now - 120, 7, 0, 3, 0.125));
  (*l)->record(rec("bob", now - 3 * 86400, 1000, 0, 1000, 9));  // older than a day
  EXPECT_TRUE((*l)->flush().ok());
  return path;
}

// The whitespace-separated fields of the table line that starts with `first`.
std::vector<std::string> row_of(const std::string& out, const std::string& first) {
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> w;
    std::string x;
    while (words >> x) w.push_back(x);
    if (!w.empty() && w[0] == first) return w;
  }
  return {};
}

TEST(UsageCli, TableAndJson) {
  const std::string db = write_ledger();
  Result t = frugal("usage --db '" + db + "' --since 24h");
  ASSERT_EQ(t.rc, 0) << t.err;
  EXPECT_NE(t.out.find("requests"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("cached_tokens"), std::string::npos) << t.out;
  // alice: 2 requests, 110 prompt, 40 cached, 25 completion, 0.75 USD; bob's old record is outside.
  EXPECT_EQ(row_of(t.out, "alice"), (std::vector<std::string>{"alice", "2", "110", "40", "25", "0.750000"})) << t.out;
  EXPECT_EQ(row_of(t.out, "bob"), (std::vector<std::string>{"bob", "1", "7", "0", "3", "0.125000"})) << t.out;
  EXPECT_EQ(row_of(t.out, "total"), (std::vector<std::string>{"total", "3", "117", "40", "28", "0.875000"})) << t.out;

  Result j = frugal("usage --db '" + db + "' --json");
  ASSERT_EQ(j.rc, 0) << j.err;
  const nlohmann::json doc = nlohmann::json::parse(j.out);
  ASSERT_EQ(doc["keys"].size(), 2u);
  EXPECT_EQ(doc["keys"][1]["key"], "bob");
  EXPECT_EQ(doc["keys"][1]["requests"], 2);
  EXPECT_EQ(doc["keys"][1]["prompt_tokens"], 1007);
  EXPECT_EQ(doc["total"]["completion_tokens"], 1028);
  EXPECT_DOUBLE_EQ(doc["total"]["cost_usd"].get<double>(), 9.875);
}

TEST(UsageCli, Errors) {
  Result missing = frugal("usage --db '" + scratch_dir() + "/absent.db'");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.err.find("absent.db"), std::string::npos) << missing.err;
  const std::string db = write_ledger();
  Result bad = frugal("usage --db '" + db + "' --since yesterday");
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("--since"), std::string::npos) << bad.err;
  Result help = frugal("usage --help");
  EXPECT_EQ(help.rc, 0);
  for (const char* flag : {"--db", "--since", "--until", "--json"}) {
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace frugal
