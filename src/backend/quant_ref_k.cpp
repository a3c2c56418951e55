// Scalar reference for K-quants: dequantization, the Q8_K activation quantizer, and the
// Q4_K/Q5_K/Q6_K x Q8_K dot products with ggml's generic arithmetic (8 integer lanes, lane l holding
// the elements with index = l mod 8, one float multiply-add per lane and super-block, lanes summed
// last; the min term of Q4_K/Q5_K is subtracted from a separate scalar).
#include <cmath>
#include <cstring>

#include "backend/quant_blocks.h"
#include "backend/quant_ref.h"
#include "base/half.h"

namespace frugal::qref {

// ---------------------------------------------------------------- dequantization

void to_float_q4_K(const void* src, float* dst, int64_t n) {
  const BlockQ4_K* b = static_cast<const BlockQ4_K*>(src);
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = fp16_to_f32(b[i].d), dmin = fp16_to_f32(b[i].dmin);
    const uint8_t* q = b[i].qs;
    for (int c = 0; c < 4; ++c, q += 32) {
      uint8_t sc, m;
      k_scale_min(2 * c, b[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      k_scale_min(2 * c + 1, b[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *dst++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

void to_float_q5_K(const void* src, float* dst, int64_t n) {
  const BlockQ5_K* b = static_cast<const BlockQ5_K*>(src);
  for (int64_t i = 0; i < n / kQKK; ++i) {
    const float d = fp16_to_f32(b[i].d), dmin = fp16_to_f32(b[i].dmin);
    const uint8_t* q = b[i].qs;
    const uint8_t* qh = b[i].qh;
    for (int c = 0; c < 4; ++c, q += 32) {
      uint8_t sc, m;
      k_scale_min(2 * c, b[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      k_scale_min(2 * c + 1, b[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      const uint8_t u1 = (uint8_t)(1u << (2 * c)), u2 = (uint8_t)(2u << (2 * c));
      for (int l = 0; l < 32; ++l) *dst++ = d1 * ((q[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * ((q[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}

namespace {
// 6-bit codes of a Q6_K super-block minus 32, in element order.
void q6_codes(const BlockQ6_K& b, int8_t q[kQKK]) {
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    int8_t* y = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      y[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
      y[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
      y[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      y[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}
}  // namespace

void to_float_q6_K(const void* src, float* dst, int64_t n) {
  const BlockQ6_K* b = static_cast<const BlockQ6_K*>(src);
  int8_t q[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i, dst += kQKK) {
    const float d = fp16_to_f32(b[i].d);
    q6_codes(b[i], q);
    for (int j = 0; j < kQKK; ++j) dst[j] = d * b[i].scales[j / 16] * q[j];
  }
}

void to_float_q8_K(const void* src, float* dst, int64_t n) {
  const BlockQ8_K* b = static_cast<const BlockQ8_K*>(src);
  for (int64_t i = 0; i < n / kQKK; ++i, dst += kQKK)
    for (int j = 0; j < kQKK; ++j) dst[j] = b[i].qs[j] * b[i].d;
}

// ---------------------------------------------------------------- Q8_K activations

void from_float_q8_K(const float* src, void* dst, int64_t n) {
  BlockQ8_K* b = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, src += kQKK) {
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < kQKK; ++j) {
      const float a = std::fabs(src[j]);
      if (a > amax) {
        amax = a;
        max = src[j];
      }
    }
    if (!amax) {
      std::memset(&b[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQKK; ++j) {
      const int v = nearest_int(iscale * src[j]);
      b[i].qs[j] = (int8_t)(v < 127 ? v : 127);
    }
    for (int g = 0; g < kQKK / 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += b[i].qs[16 * g + l];
      b[i].bsums[g] = (int16_t)sum;
    }
    b[i].d = 1 / iscale;
  }
}

// ---------------------------------------------------------------- dot products

namespace {

// Q4_K / Q5_K: codes[256] unsigned, scales/mins from the packed bytes.
inline void kx_accumulate(const uint8_t codes[kQKK], const uint8_t* packed_scales, float d, float dmin,
                          const BlockQ8_K& y, float sums[8], float* sumf) {
  uint8_t sc[8], mn[8];
  k_unpack_scales(packed_scales, sc, mn);
  int summ = 0;
  for (int g = 0; g < kQKK / 16; ++g) summ += y.bsums[g] * mn[g / 2];
  int32_t aux32[8] = {0};
  for (int j = 0; j < kQKK; j += 8) {
    const int scale = sc[j / 32];
    for (int l = 0; l < 8; ++l) aux32[l] += scale * (codes[j + l] * y.qs[j + l]);
  }
  const float dd = d * y.d;
  for (int l = 0; l < 8; ++l) sums[l] += dd * (float)aux32[l];
  const float dm = dmin * y.d;
  *sumf -= dm * (float)summ;
}

inline float finish(const float sums[8], float sumf) {
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

}  // namespace

void vec_dot_q4_K_q8_K(int64_t n, float* s, const void* x, const void* y) {
  const BlockQ4_K* a = static_cast<const BlockQ4_K*>(x);
  const BlockQ8_K* b = static_cast<const BlockQ8_K*>(y);
  float sums[8] = {0}, sumf = 0.f;
  uint8_t codes[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i) {
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        codes[64 * c + l] = a[i].qs[32 * c + l] & 0xF;
        codes[64 * c + 32 + l] = a[i].qs[32 * c + l] >> 4;
      }
    kx_accumulate(codes, a[i].scales, fp16_to_f32(a[i].d), fp16_to_f32(a[i].dmin), b[i], sums, &sumf);
  }
  *s = finish(sums, sumf);
}

void vec_dot_q5_K_q8_K(int64_t n, float* s, const void* x, const void* y) {
  const BlockQ5_K* a = static_cast<const BlockQ5_K*>(x);
  const BlockQ8_K* b = static_cast<const BlockQ8_K*>(y);
  float sums[8] = {0}, sumf = 0.f;
  uint8_t codes[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i) {
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        const uint8_t h = a[i].qh[l];
        codes[64 * c + l] = (uint8_t)((a[i].qs[32 * c + l] & 0xF) | (((h >> (2 * c)) & 1) << 4));
        codes[64 * c + 32 + l] = (uint8_t)((a[i].qs[32 * c + l] >> 4) | (((h >> (2 * c + 1)) & 1) << 4));
      }
    kx_accumulate(codes, a[i].scales, fp16_to_f32(a[i].d), fp16_to_f32(a[i].dmin), b[i], sums, &sumf);
  }
  *s = finish(sums, sumf);
}

void vec_dot_q6_K_q8_K(int64_t n, float* s, const void* x, const void* y) {
  const BlockQ6_K* a = static_cast<const BlockQ6_K*>(x);
  const BlockQ8_K* b = static_cast<const BlockQ8_K*>(y);
  float sums[8] = {0};
  int8_t q[kQKK];
  for (int64_t i = 0; i < n / kQKK; ++i) {
    q6_codes(a[i], q);
    int32_t aux32[8] = {0};
    for (int j = 0; j < kQKK; j += 8) {
      const int scale = a[i].scales[j / 16];
      for (int l = 0; l < 8; ++l) aux32[l] += scale * (q[j + l] * b[i].qs[j + l]);
    }
    const float d = fp16_to_f32(a[i].d) * b[i].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * (float)aux32[l];
  }
  *s = finish(sums, 0.f);
}

}  // namespace frugal::qref
