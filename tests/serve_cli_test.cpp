// `frugal serve` as a process: the startup block names the real port (--port 0), requests work over
// loopback, SIGTERM drains (the running stream completes) and the process exits 0; bad options exit 1.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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

namespace {

using nlohmann::json;

const std::string kStories = std::string(FRUGAL_SHARED_DIR) + "/models/stories260K.gguf";

// A `frugal serve` child process with its stdout on a pipe.
struct ServeProcess {
  pid_t pid = -1;
  int out = -1;
  int port = 0;
  std::string banner;

  ~ServeProcess() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (out >= 0) close(out);
  }

  // Starts the binary and reads stdout until the "listening on http://HOST:PORT" line (at most 30 s).
  bool start(const std::vector<std::string>& args) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    pid = fork();
    if (pid == 0) {
      dup2(fds[1], 1);
      const int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 2);
      close(fds[0]);
      std::vector<char*> argv;
      std::string bin = FRUGAL_BINARY_PATH;
      argv.push_back(bin.data());
      std::vector<std::string> copy = args;
      for (std::string& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    out = fds[0];
    const double end = frugal::now_seconds() + 30;
    while (frugal::now_seconds() < end) {
      pollfd p{out, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[512];
      const ssize_t n = read(out, buf, sizeof buf);
      if (n <= 0) return false;
      banner.append(buf, (size_t)n);
      const size_t at = banner.find("listening on http://127.0.0.1:");
      if (at != std::string::npos && banner.find('\n', at) != std::string::npos) {
        port = std::stoi(banner.substr(at + 30));
        return port > 0;
      }
    }
    return false;
  }

  // Waits for the exit (at most timeout_s); returns the exit code, or -1 (killed / still running).
  int wait_exit(double timeout_s) {
    const double end = frugal::now_seconds() + timeout_s;
    while (frugal::now_seconds() < end) {
      int status = 0;
      const pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid) {
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
};

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
