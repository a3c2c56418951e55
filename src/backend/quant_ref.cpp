// Scalar reference: float formats and legacy 32-element blocks. See quant_ref.h for the contract.
// Built for baseline x86-64 (no FMA), so every a*b+c here rounds twice, as in ggml's generic C.
#include "backend/quant_ref.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "backend/quant_blocks.h"
#include "base/half.h"

namespace frugal::qref {

// ---------------------------------------------------------------- float formats

void to_float_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, (size_t)n * 4); }

void to_float_f16(const void* src, float* dst, int64_t n) {
  const uint16_t* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(h[i]);
}

void to_float_bf16(const void* src, float* dst, int64_t n) {
  const uint16_t* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(h[i]);
}

void from_float_f32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, (size_t)n * 4); }

void from_float_f16(const float* src, void* dst, int64_t n) {
  uint16_t* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = f32_to_fp16(src[i]);
}

void from_float_bf16(const float* src, void* dst, int64_t n) {
  uint16_t* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(src[i]);
}

void vec_dot_f32(int64_t n, float* s, const void* x, const void* y) {
  const float* a = static_cast<const float*>(x);
  const float* b = static_cast<const float*>(y);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += (double)(a[i] * b[i]);
  *s = (float)sum;
}

void vec_dot_f16(int64_t n, float* s, const void* x, const void* y) {
  const uint16_t* a = static_cast<const uint16_t*>(x);
  const uint16_t* b = static_cast<const uint16_t*>(y);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += (double)(fp16_to_f32(a[i]) * fp16_to_f32(b[i]));
  *s = (float)sum;
}

void vec_dot_bf16(int64_t n, float* s, const void* x, const void* y) {
  const uint16_t* a = static_cast<const uint16_t*>(x);
  const uint16_t* b = static_cast<const uint16_t*>(y);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += (double)(bf16_to_f32(a[i]) * bf16_to_f32(b[i]));
  *s = (float)sum;
}

// ---------------------------------------------------------------- legacy blocks: dequantization

void to_float_q4_0(const void* src, float* dst, int64_t n) {
  const BlockQ4_0* b = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_f32(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = ((b[i].qs[j] & 0x0F) - 8) * d;
      dst[j + kQK / 2] = ((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void to_float_q4_1(const void* src, float* dst, int64_t n) {
  const BlockQ4_1* b = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_f32(b[i].d), m = fp16_to_f32(b[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = (b[i].qs[j] & 0x0F) * d + m;
      dst[j + kQK / 2] = (b[i].qs[j] >> 4) * d + m;
    }
  }
}

namespace {
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// 5-bit codes of a Q5_0/Q5_1 block: q[j] in 0..31.
inline void q5_codes(const uint8_t* qs, const uint8_t* qh4, int q[kQK]) {
  const uint32_t qh = load_u32(qh4);
  for (int j = 0; j < kQK / 2; ++j) {
    q[j] = (qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
    q[j + kQK / 2] = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
  }
}
}  // namespace

void to_float_q5_0(const void* src, float* dst, int64_t n) {
  const BlockQ5_0* b = static_cast<const BlockQ5_0*>(src);
  int q[kQK];
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_f32(b[i].d);
    q5_codes(b[i].qs, b[i].qh, q);
    for (int j = 0; j < kQK; ++j) dst[j] = (q[j] - 16) * d;
  }
}

void to_float_q5_1(const void* src, float* dst, int64_t n) {
  const BlockQ5_1* b = static_cast<const BlockQ5_1*>(src);
  int q[kQK];
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_f32(b[i].d), m = fp16_to_f32(b[i].m);
    q5_codes(b[i].qs, b[i].qh, q);
    for (int j = 0; j < kQK; ++j) dst[j] = q[j] * d + m;
  }
}

void to_float_q8_0(const void* src, float* dst, int64_t n) {
  const BlockQ8_0* b = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_f32(b[i].d);
    for (int j = 0; j < kQK; ++j) dst[j] = b[i].qs[j] * d;
  }
}

void to_float_q8_1(const void* src, float* dst, int64_t n) {
  const BlockQ8_1* b = static_cast<const BlockQ8_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i, dst += kQK) {
    const float d = fp16_to_f32(b[i].d);
    for (int j = 0; j < kQK; ++j) dst[j] = b[i].qs[j] * d;
  }
}

// ---------------------------------------------------------------- legacy blocks: quantization

namespace {
// The element of largest magnitude, keeping its sign (first one on ties), as ggml's ref quantizers.
inline float signed_absmax(const float* x, int n) {
  float amax = 0.f, max = 0.f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}
inline void min_max(const float* x, int n, float* mn, float* mx) {
  float lo = FLT_MAX, hi = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < lo) lo = x[j];
    if (x[j] > hi) hi = x[j];
  }
  *mn = lo;
  *mx = hi;
}
inline void store_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
}  // namespace

void from_float_q4_0(const float* src, void* dst, int64_t n) {
  BlockQ4_0* b = static_cast<BlockQ4_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, src += kQK) {
    const float d = signed_absmax(src, kQK) / -8;
    const float id = d ? 1.0f / d : 0.0f;
    b[i].d = f32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, (int)(int8_t)(src[j] * id + 8.5f));
      const int q1 = std::min(15, (int)(int8_t)(src[j + kQK / 2] * id + 8.5f));
      b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
    }
  }
}

void from_float_q4_1(const float* src, void* dst, int64_t n) {
  BlockQ4_1* b = static_cast<BlockQ4_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, src += kQK) {
    float mn, mx;
    min_max(src, kQK, &mn, &mx);
    const float d = (mx - mn) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    b[i].d = f32_to_fp16(d);
    b[i].m = f32_to_fp16(mn);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, (int)(int8_t)((src[j] - mn) * id + 0.5f));
      const int q1 = std::min(15, (int)(int8_t)((src[j + kQK / 2] - mn) * id + 0.5f));
      b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
    }
  }
}

void from_float_q5_0(const float* src, void* dst, int64_t n) {
  BlockQ5_0* b = static_cast<BlockQ5_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, src += kQK) {
    const float d = signed_absmax(src, kQK) / -16;
    const float id = d ? 1.0f / d : 0.0f;
    b[i].d = f32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(31, (int)(int8_t)(src[j] * id + 16.5f));
      const int q1 = std::min(31, (int)(int8_t)(src[j + kQK / 2] * id + 16.5f));
      b[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= (uint32_t)((q0 >> 4) & 1) << j;
      qh |= (uint32_t)((q1 >> 4) & 1) << (j + kQK / 2);
    }
    store_u32(b[i].qh, qh);
  }
}

void from_float_q5_1(const float* src, void* dst, int64_t n) {
  BlockQ5_1* b = static_cast<BlockQ5_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, src += kQK) {
    float mn, mx;
    min_max(src, kQK, &mn, &mx);
    const float d = (mx - mn) / 31;
    const float id = d ? 1.0f / d : 0.0f;
    b[i].d = f32_to_fp16(d);
    b[i].m = f32_to_fp16(mn);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t q0 = (uint8_t)((src[j] - mn) * id + 0.5f);  // ggml: no clamp here
      const uint8_t q1 = (uint8_t)((src[j + kQK / 2] - mn) * id + 0.5f);
      b[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= (uint32_t)((q0 >> 4) & 1) << j;
      qh |= (uint32_t)((q1 >> 4) & 1) << (j + kQK / 2);
    }
    store_u32(b[i].qh, qh);
  }
}

namespace {
inline float block_absmax(const float* x, int n) {
  float amax = 0.f;
  for (int j = 0; j < n; ++j) {
    const float a = std::fabs(x[j]);
    amax = amax < a ? a : amax;
  }
  return amax;
}
// llama.cpp x86 activation quantizer: d = amax/127 (stored f16), q = RNE(x * (127/amax)).
inline float quantize_act_block(const float* x, int8_t* qs, uint16_t* d_out) {
  const float amax = block_absmax(x, kQK);
  const float d = amax / 127.f;
  const float id = amax != 0.0f ? 127.f / amax : 0.0f;
  *d_out = f32_to_fp16(d);
  for (int j = 0; j < kQK; ++j) qs[j] = (int8_t)nearest_int(x[j] * id);
  return d;
}
}  // namespace

void from_float_q8_0(const float* src, void* dst, int64_t n) {
  BlockQ8_0* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, src += kQK) quantize_act_block(src, b[i].qs, &b[i].d);
}

void from_float_q8_1(const float* src, void* dst, int64_t n) {
  BlockQ8_1* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, src += kQK) {
    const float d = quantize_act_block(src, b[i].qs, &b[i].d);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) sum += b[i].qs[j];
    b[i].s = f32_to_fp16(d * (float)sum);
  }
}

void quantize_q8_0_weights(const float* src, void* dst, int64_t n) {
  BlockQ8_0* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, src += kQK) {
    const float d = block_absmax(src, kQK) / 127.f;
    const float id = d ? 1.0f / d : 0.0f;
    b[i].d = f32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) b[i].qs[j] = (int8_t)std::round(src[j] * id);
  }
}

// ---------------------------------------------------------------- legacy blocks: dot products

void vec_dot_q4_0_q8_0(int64_t n, float* s, const void* x, const void* y) {
  const BlockQ4_0* a = static_cast<const BlockQ4_0*>(x);
  const BlockQ8_0* b = static_cast<const BlockQ8_0*>(y);
  float sum = 0.f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int s0 = 0, s1 = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      s0 += ((a[i].qs[j] & 0x0F) - 8) * b[i].qs[j];
      s1 += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + kQK / 2];
    }
    sum += (float)(s0 + s1) * fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d);
  }
  *s = sum;
}

void vec_dot_q4_1_q8_1(int64_t n, float* s, const void* x, const void* y) {
  const BlockQ4_1* a = static_cast<const BlockQ4_1*>(x);
  const BlockQ8_1* b = static_cast<const BlockQ8_1*>(y);
  float sum = 0.f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int s0 = 0, s1 = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      s0 += (a[i].qs[j] & 0x0F) * b[i].qs[j];
      s1 += (a[i].qs[j] >> 4) * b[i].qs[j + kQK / 2];
    }
    sum += (fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d)) * (float)(s0 + s1) +
           fp16_to_f32(a[i].m) * fp16_to_f32(b[i].s);
  }
  *s = sum;
}

void vec_dot_q5_0_q8_0(int64_t n, float* s, const void* x, const void* y) {
  const BlockQ5_0* a = static_cast<const BlockQ5_0*>(x);
  const BlockQ8_0* b = static_cast<const BlockQ8_0*>(y);
  float sum = 0.f;
  int q[kQK];
  for (int64_t i = 0; i < n / kQK; ++i) {
    q5_codes(a[i].qs, a[i].qh, q);
    int s0 = 0, s1 = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      s0 += (q[j] - 16) * b[i].qs[j];
      s1 += (q[j + kQK / 2] - 16) * b[i].qs[j + kQK / 2];
    }
    sum += (fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d)) * (float)(s0 + s1);
  }
  *s = sum;
}

void vec_dot_q5_1_q8_1(int64_t n, float* s, const void* x, const void* y) {
  const BlockQ5_1* a = static_cast<const BlockQ5_1*>(x);
  const BlockQ8_1* b = static_cast<const BlockQ8_1*>(y);
  float sum = 0.f;
  int q[kQK];
  for (int64_t i = 0; i < n / kQK; ++i) {
    q5_codes(a[i].qs, a[i].qh, q);
    int s0 = 0, s1 = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      s0 += q[j] * b[i].qs[j];
      s1 += q[j + kQK / 2] * b[i].qs[j + kQK / 2];
    }
    sum += (fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d)) * (float)(s0 + s1) +
           fp16_to_f32(a[i].m) * fp16_to_f32(b[i].s);
  }
  *s = sum;
}

void vec_dot_q8_0_q8_0(int64_t n, float* s, const void* x, const void* y) {
  const BlockQ8_0* a = static_cast<const BlockQ8_0*>(x);
  const BlockQ8_0* b = static_cast<const BlockQ8_0*>(y);
  float sum = 0.f;
  for (int64_t i = 0; i < n / kQK; ++i) {
    int si = 0;
    for (int j = 0; j < kQK; ++j) si += a[i].qs[j] * b[i].qs[j];
    sum += (float)si * (fp16_to_f32(a[i].d) * fp16_to_f32(b[i].d));
  }
  *s = sum;
}

}  // namespace frugal::qref
