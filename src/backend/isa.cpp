#include "backend/isa.h"

#include <cpuid.h>

#include <cstdint>
#include <string>

namespace frugal {

namespace {

struct CpuFeatures {
  bool avx = false, avx2 = false, fma = false, f16c = false, bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avx512bf16 = false, avx_vnni = false;
  bool os_ymm = false, os_zmm = false;
  std::string summary;
};

uint64_t read_xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

CpuFeatures probe() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  f.avx = (c >> 28) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  if (osxsave) {
    const uint64_t xcr0 = read_xcr0();
    f.os_ymm = (xcr0 & 0x6) == 0x6;            // XMM | YMM state
    f.os_zmm = f.os_ymm && (xcr0 & 0xe0) == 0xe0;  // opmask | ZMM_Hi256 | Hi16_ZMM
  }
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = (b >> 5) & 1;
    f.bmi2 = (b >> 8) & 1;
    f.avx512f = (b >> 16) & 1;
    f.avx512dq = (b >> 17) & 1;
    f.avx512bw = (b >> 30) & 1;
    f.avx512vl = (b >> 31) & 1;
    f.avx512vnni = (c >> 11) & 1;
    const unsigned max_sub = a;
    if (max_sub >= 1) {
      __cpuid_count(7, 1, a, b, c, d);
      f.avx_vnni = (a >> 4) & 1;
      f.avx512bf16 = (a >> 5) & 1;
    }
  }
  if (!f.os_ymm) f.avx = f.avx2 = f.fma = f.f16c = f.avx_vnni = false;
  if (!f.os_zmm) f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512vnni = f.avx512bf16 = false;

  const std::pair<bool, const char*> names[] = {
      {f.avx, "AVX"},           {f.avx2, "AVX2"},         {f.fma, "FMA"},           {f.f16c, "F16C"},
      {f.bmi2, "BMI2"},         {f.avx_vnni, "AVX_VNNI"}, {f.avx512f, "AVX512F"},   {f.avx512bw, "AVX512BW"},
      {f.avx512vl, "AVX512VL"}, {f.avx512dq, "AVX512DQ"}, {f.avx512vnni, "AVX512_VNNI"},
      {f.avx512bf16, "AVX512_BF16"},
  };
  for (const auto& [on, name] : names) {
    if (!on) continue;
    if (!f.summary.empty()) f.summary += ' ';
    f.summary += name;
  }
  if (f.summary.empty()) f.summary = "(no AVX)";
  return f;
}

const CpuFeatures& features() {
  static const CpuFeatures f = probe();
  return f;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = features();
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return f.avx2 && f.fma && f.f16c && f.bmi2;
    case Isa::kAvx512:
      return isa_supported(Isa::kAvx2) && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni;
  }
  return false;
}

Isa detect_isa() {
  if (isa_supported(Isa::kAvx512)) return Isa::kAvx512;
  if (isa_supported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

const char* cpu_features_string() { return features().summary.c_str(); }

bool cpu_has_avx512_bf16() { return features().avx512bf16 && isa_supported(Isa::kAvx512); }

}  // namespace frugal
