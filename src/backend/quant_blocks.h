// Byte layouts of the ggml block formats (reference §2), as packed C structs, plus small helpers the
// scalar and SIMD kernels share. Every struct's size is checked against the DType table.
//
//   legacy 32-element blocks: low nibble of qs[j] = element j, high nibble = element j+16
//   IQ4_NL: Q4_0's layout, but each nibble indexes the codebook kIQ4NLValues instead of meaning q - 8
//   K-quants: 256-element super-blocks; Q4_K/Q5_K carry 8 (scale, min) pairs packed in 12 bytes
#pragma once

#include <cstdint>
#include <cstring>

namespace frugal {

constexpr int kQK = 32;     // legacy block size
constexpr int kQKK = 256;   // K-quant super-block size
constexpr int kKScaleBytes = 12;

#pragma pack(push, 1)
struct BlockQ4_0 { uint16_t d; uint8_t qs[kQK / 2]; };
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[kQK / 2]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[kQK]; };
struct BlockQ8_1 { uint16_t d; uint16_t s; int8_t qs[kQK]; };  // s = fp16(d * sum(qs))
struct BlockQ4_K { uint16_t d; uint16_t dmin; uint8_t scales[kKScaleBytes]; uint8_t qs[kQKK / 2]; };
struct BlockQ5_K {
  uint16_t d; uint16_t dmin; uint8_t scales[kKScaleBytes]; uint8_t qh[kQKK / 8]; uint8_t qs[kQKK / 2];
};
struct BlockQ6_K { uint8_t ql[kQKK / 2]; uint8_t qh[kQKK / 4]; int8_t scales[kQKK / 16]; uint16_t d; };
struct BlockQ8_K { float d; int8_t qs[kQKK]; int16_t bsums[kQKK / 16]; };
struct BlockIQ4_NL { uint16_t d; uint8_t qs[kQK / 2]; };  // nibbles index kIQ4NLValues (legacy order)
#pragma pack(pop)

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292 && sizeof(BlockIQ4_NL) == 18);

// IQ4_NL's fixed non-linear codebook (ggml kvalues_iq4nl, reference §2.2): element = d * value[code].
// Sorted ascending; asymmetric (the negative end reaches -127, the positive one 113).
inline constexpr int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// (scale, min) of sub-block j (0..7) from the 12 packed bytes of Q4_K/Q5_K (reference §2.3).
inline void k_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// All 8 scales and 8 mins of a Q4_K/Q5_K super-block.
inline void k_unpack_scales(const uint8_t* q, uint8_t sc[8], uint8_t m[8]) {
  for (int j = 0; j < 8; ++j) k_scale_min(j, q, &sc[j], &m[j]);
}

// Round to nearest, ties to even, for |f| <= 4194303 (ggml's nearest_int float trick). Exact same
// result as nearbyintf / _mm_cvtps_epi32 under the default rounding mode in that range.
inline int nearest_int(float f) {
  const float v = f + 12582912.f;
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

}  // namespace frugal
