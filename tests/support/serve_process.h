// A `frugal serve` child process for cross-module tests: fork/exec of FRUGAL_BINARY_PATH with stdout on a
// pipe, the port read from the startup block's "listening on http://127.0.0.1:PORT" line, SIGKILL and
// reap on destruction. Header-only; include from tests only.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "base/timer.h"

namespace frugal::test {

inline const std::string kStoriesModel = std::string(FRUGAL_SHARED_DIR) + "/models/stories260K.gguf";

// A `frugal serve` child process with its stdout on a pipe.
struct ServeProcess {
  pid_t pid = -1;
  int out = -1;
  int port = 0;
  std::string banner;
  std::string stderr_path = "/dev/null";  // where the child's stderr goes

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
      const int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) dup2(err, 2);
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
    const double end = now_seconds() + 30;
    while (now_seconds() < end) {
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
    const double end = now_seconds() + timeout_s;
    while (now_seconds() < end) {
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

}  // namespace frugal::test
