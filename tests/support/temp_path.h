// A temporary file path private to the running test: ctest runs tests in parallel processes, so two
// tests must never share a name. The name carries the pid and the current test's suite and name.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace frugal {

inline std::string test_temp_path(const std::string& name) {
  std::string tag = "frugal-" + std::to_string(::getpid());
  if (const ::testing::TestInfo* t = ::testing::UnitTest::GetInstance()->current_test_info()) {
    tag += std::string("-") + t->test_suite_name() + "." + t->name();
  }
  for (char& c : tag) {
    if (c == '/') c = '_';
  }
  return (std::filesystem::temp_directory_path() / (tag + "-" + name)).string();
}

}  // namespace frugal
