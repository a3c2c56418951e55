// Runs the frugal binary (or any command) from tests through the shell (arguments are trusted test
// strings, quoted by the caller): stdout captured, stderr through a file in the test process's private
// scratch directory, which is removed when the process exits. FRUGAL_BINARY_PATH comes from CMakeLists.txt.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace frugal {

struct CliResult {
  int rc = -1;       // exit status; 128 + signal when killed by one
  std::string out;   // stdout
  std::string err;   // stderr
  std::string all() const { return out + err; }
};

inline std::string slurp_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// One private directory per test process (mkdtemp under gtest's TempDir), removed at exit.
inline const std::string& cli_scratch_dir() {
  struct Dir {
    std::string path;
    bool owned = false;
    Dir() {
      std::string tmpl = ::testing::TempDir() + "frugal_cli_XXXXXX";
      std::vector<char> buf(tmpl.begin(), tmpl.end());
      buf.push_back('\0');
      const char* d = mkdtemp(buf.data());
      owned = d != nullptr;
      path = d ? d : ::testing::TempDir();
    }
    ~Dir() {
      std::error_code ec;
      if (owned) std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

// Runs `cmd` through the shell: stdout captured, stderr through a scratch file.
inline CliResult run_shell(const std::string& cmd) {
  static int counter = 0;
  const std::string err_path = cli_scratch_dir() + "/stderr_" + std::to_string(counter++) + ".txt";
  CliResult r;
  FILE* p = popen((cmd + " 2>'" + err_path + "'").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.err = slurp_file(err_path);
  std::filesystem::remove(err_path);
  return r;
}

// `frugal <args>`.
inline CliResult run_frugal(const std::string& args) {
  return run_shell(std::string("'") + FRUGAL_BINARY_PATH + "' " + args);
}

}  // namespace frugal
