#include "backend/amx.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace frugal {

namespace {

constexpr long kArchReqXcompPerm = 0x1023;  // arch_prctl code (asm/prctl.h)
constexpr long kXfeatureXtiledata = 18;

AmxInfo detect() {
  AmxInfo a;
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    a.tile = (edx >> 24) & 1;
    a.int8 = (edx >> 25) & 1;
    a.bf16 = (edx >> 22) & 1;
  }
  if (!a.tile) {
    a.status = "AMX: not present on this CPU";
    return a;
  }
  // XCR0 says which state components the OS manages; Linux sets the tile bits but still gates their use.
  unsigned c1, d1, c2, d2;
  bool osxsave = __get_cpuid(1, &c1, &d1, &c2, &d2) && ((c2 >> 27) & 1);
  if (osxsave) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    a.os_supports = ((lo >> 17) & 3) == 3;
  }
  if (!a.os_supports) {
    a.status = "AMX: present but not enabled by the operating system (XCR0)";
    return a;
  }
#ifdef __linux__
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0) {
    a.permitted = true;
    a.status = std::string("AMX: present (") + (a.int8 ? "INT8" : "") + (a.int8 && a.bf16 ? " " : "") +
               (a.bf16 ? "BF16" : "") + "), permission granted; no AMX kernels yet, AVX-512 is used";
  } else {
    a.status = std::string("AMX: present but the kernel refused the tile permission (") + std::strerror(errno) +
               "); AVX-512 is used";
  }
#else
  a.status = "AMX: present, but only Linux's permission request is implemented";
#endif
  return a;
}

}  // namespace

const AmxInfo& amx_info() {
  static const AmxInfo info = detect();
  return info;
}

}  // namespace frugal
