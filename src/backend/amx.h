// AMX (Advanced Matrix Extensions: 8 tile registers of 16 rows x 64 bytes and TMUL, INT8 and BF16 dot
// products) detection, and the Linux permission request every process must make before touching tiles.
//
// AMX state (XTILEDATA, 8 KiB per thread) is off by default in Linux processes; the first use of a tile
// instruction without permission kills the process with SIGILL. amx_info() asks once, via
// arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), and records whether it was granted, so a kernel
// can fall back to AVX-512/AVX2 cleanly when the CPU has no AMX or the kernel refuses.
//
// Status: frugal detects AMX and requests permission; it has no AMX kernels yet (the CPUs it is developed
// and tested on have none, and an AMX kernel that cannot be run against its scalar twin is not shipped).
#pragma once

#include <string>

namespace frugal {

struct AmxInfo {
  bool tile = false;        // CPUID.(7,0):EDX[24] AMX-TILE
  bool int8 = false;        // CPUID.(7,0):EDX[25] AMX-INT8
  bool bf16 = false;        // CPUID.(7,0):EDX[22] AMX-BF16
  bool os_supports = false; // XCR0 bits 17 and 18 (XTILECFG, XTILEDATA) may be enabled by the OS
  bool permitted = false;   // the ARCH_REQ_XCOMP_PERM request succeeded: tiles may be used
  std::string status;       // one line for logs, e.g. "AMX: not present on this CPU"
};

// Detects once (thread-safe) and, on a CPU with AMX, requests the permission for this process.
const AmxInfo& amx_info();

}  // namespace frugal
