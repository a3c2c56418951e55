// Unaligned little-endian loads from block bytes, shared by the per-ISA kernel helper headers
// (quant_avx2_util.h, quant_avx512_util.h). Internal linkage, like those headers: each ISA's
// translation units get their own copy (see quant_gemm.h).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace frugal {
namespace {  // NOLINT: per-ISA internal linkage

inline uint16_t ld_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline uint32_t ld_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline float ld_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

inline float f16_at(const uint8_t* p) { return _cvtsh_ss(ld_u16(p)); }

}  // namespace
}  // namespace frugal
