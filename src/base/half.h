// IEEE binary16 and bfloat16 <-> f32, bit-exact with ggml (round-to-nearest-even; F16C semantics).
#pragma once

#include <cstdint>
#include <cstring>

namespace frugal {

inline float bits_to_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t f32_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float fp16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000 | (mant << 13) | (mant ? 0x400000u : 0u));  // inf / quiet nan
  if (exp == 0) {
    if (mant == 0) return bits_to_f32(sign);
    // subnormal: normalize
    int e = -1;
    do { mant <<= 1; ++e; } while ((mant & 0x400) == 0);
    mant &= 0x3ff;
    return bits_to_f32(sign | ((uint32_t)(112 - e) << 23) | (mant << 13));
  }
  return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t f32_to_fp16(float f) {
  const uint32_t x = f32_to_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t ax = x & 0x7fffffff;
  if (ax >= 0x7f800000) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000 ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
  if (ax >= 0x477ff000) return (uint16_t)(sign | 0x7c00);  // rounds to >= 65520 -> inf
  if (ax < 0x38800000) {                                     // subnormal or zero in f16
    if (ax < 0x33000000) return (uint16_t)sign;              // < 2^-25 -> 0 (2^-25 exactly ties to even 0)
    const uint32_t e = ax >> 23;
    const uint32_t m = (ax & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - e;  // 14 + (113 - e) ... value = m * 2^(e-150); f16 ulp = 2^-24
    const uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    uint32_t r = q + (rem > half || (rem == half && (q & 1)));
    return (uint16_t)(sign | r);
  }
  uint32_t r = ax - 0x38000000;  // rebias exponent 127 -> 15
  r = (r + 0xfff + ((r >> 13) & 1)) >> 13;
  return (uint16_t)(sign | r);
}

inline float bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

inline uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_to_bits(f);
  if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 64);  // quiet nan
  return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

}  // namespace frugal
