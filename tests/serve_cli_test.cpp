// `frugal serve` as a process: the startup block names the real port (--port 0), requests work over
// loopback, SIGTERM drains (the running stream completes) and the process exits 0; bad options exit 1.
#include <signal.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/timer.h"
#include "server/sse.h"
#include "support/serve_process.h"

namespace {

using nlohmann::json;
using frugal::test::ServeProcess;

const std::string kStories = frugal::test::kStoriesModel;

TEST(ServeCli, SigtermDrainsRunningStreamAndExitsZero) {
  ServeProcess p;
  ASSERT_TRUE(p.start({"serve", "-m", kStories, "--port", "0", "-t", "1", "--kv-cache-tokens", "4096",
                       "--cost-per-hour", "2", "--alias", "tiny"}))
      << p.banner;
  EXPECT_NE(p.banner.find("KV pool 4096 tokens"), std::string::npos) << p.banner;
  httplib::Client c("127.0.0.1", p.port);
  c.set_read_timeout(30, 0);
  auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "tiny");

  // A long stream; SIGTERM arrives once its first chunk is here.
  std::atomic<bool> first_chunk{false};
  frugal::SseParser parser;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = json{{"prompt", "Once upon a time"}, {"max_tokens", 1500}, {"ignore_eos", true}, {"stream", true},
                  {"stream_options", {{"include_usage", true}}}}
                 .dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
    parser.feed(std::string_view(d, n));
    first_chunk = true;
    return true;
  };
  int status = 0;
  std::thread t([&] {
    httplib::Client sc("127.0.0.1", p.port);
    sc.set_read_timeout(30, 0);
    auto r = sc.send(req);
    status = r ? r->status : 0;
  });
  for (int i = 0; i < 3000 && !first_chunk; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_TRUE(first_chunk.load());
  kill(p.pid, SIGTERM);
  t.join();
  EXPECT_EQ(status, 200);
  std::vector<std::string> events = parser.take();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  json usage = json::parse(events[events.size() - 2])["usage"];
  EXPECT_EQ(usage["completion_tokens"], 1500) << "the running request was cut short";
  EXPECT_GT(usage["cost_usd"].get<double>(), 0.0);
  EXPECT_EQ(p.wait_exit(30), 0);
}

TEST(ServeCli, BadOptionsExitOne) {
  {
    ServeProcess p;
    EXPECT_FALSE(p.start({"serve", "-m", "/nonexistent.gguf", "--port", "0"}));
    EXPECT_EQ(p.wait_exit(30), 1);
  }
  {
    ServeProcess p;
    EXPECT_FALSE(p.start({"serve", "-m", kStories, "--port", "0", "--kv-cache-mem", "2XB"}));
    EXPECT_EQ(p.wait_exit(30), 1);
  }
}

}  // namespace
