#include "backend/amx.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace frugal {
namespace {

// The kernel's view of the CPU (/proc/cpuinfo flags) is an independent source for what CPUID says.
bool cpuinfo_has(const std::string& flag) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string w; words >> w;)
      if (w == flag) return true;
    return false;
  }
  return false;
}

TEST(Amx, DetectionAgreesWithTheKernelsCpuFlags) {
  std::ifstream probe("/proc/cpuinfo");
  if (!probe) GTEST_SKIP() << "no /proc/cpuinfo";
  const AmxInfo& a = amx_info();
  EXPECT_EQ(a.tile, cpuinfo_has("amx_tile"));
  EXPECT_EQ(a.int8, cpuinfo_has("amx_int8"));
  EXPECT_EQ(a.bf16, cpuinfo_has("amx_bf16"));
  EXPECT_FALSE(a.status.empty());
  if (!a.tile) {
    EXPECT_FALSE(a.permitted);
    EXPECT_NE(a.status.find("not present"), std::string::npos) << a.status;
  } else if (a.permitted) {
    EXPECT_TRUE(a.os_supports);
  }
  EXPECT_EQ(&a, &amx_info());  // detected once
}

}  // namespace
}  // namespace frugal
