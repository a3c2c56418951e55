// AVX2 row of the quant traits table: activation quantizers (bytes identical to the scalar ones in
// quant_ref*.cpp), float-format dot products and tiles (F32, F16, BF16: 8 elements per step, one FMA
// accumulator per (row, column), zero-padded tail), and the wiring of the block-format kernels from
// quant_legacy_avx2.cpp / quant_kquants_avx2.cpp. Scalar twins: qref::vec_dot_f32/f16/bf16.
#include <cstring>

#include "backend/quant_avx2_util.h"
#include "backend/quant_gemm.h"
#include "backend/quant_isa.h"
#include "backend/quant_kernels.h"
#include "base/half.h"

namespace frugal {
namespace avx2 {
namespace {

struct LoadF32 {
  static constexpr int kElemBytes = 4;
  static __m256 load(const uint8_t* p) { return _mm256_loadu_ps((const float*)p); }
};
struct LoadF16 {
  static constexpr int kElemBytes = 2;
  static __m256 load(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
};
struct LoadBF16 {
  static constexpr int kElemBytes = 2;
  static __m256 load(const uint8_t* p) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
};

template <class L, int kR, int kC>
struct FloatKernel {
  static constexpr int kRows = kR, kCols = kC;

  template <int R, int C>
  static void tile(const TileArgs& a) {
    __m256 acc[R][C];
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { acc[r][c] = _mm256_setzero_ps(); }); });
    // Rows are read through `wp`/`xp` so the tail can point them at zero-padded copies.
    auto step = [&](const uint8_t* const* wp, const uint8_t* const* xp) __attribute__((always_inline)) {
      __m256 wv[R];
      unroll<R>([&](auto r) { wv[r] = L::load(wp[r]); });
      unroll<C>([&](auto c) {
        const __m256 xv = L::load(xp[c]);
        unroll<R>([&](auto r) { acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]); });
      });
    };
    const uint8_t* wp[R];
    const uint8_t* xp[C];
    int64_t i = 0;
    for (; i + 8 <= a.n; i += 8) {
      unroll<R>([&](auto r) { wp[r] = a.w + r * a.w_row_bytes + i * L::kElemBytes; });
      unroll<C>([&](auto c) { xp[c] = a.x + c * a.x_row_bytes + i * L::kElemBytes; });
      step(wp, xp);
    }
    if (i < a.n) {
      const size_t tail = (size_t)(a.n - i) * L::kElemBytes;
      alignas(32) uint8_t wt[R][32] = {}, xt[C][32] = {};
      unroll<R>([&](auto r) {
        std::memcpy(wt[r], a.w + r * a.w_row_bytes + i * L::kElemBytes, tail);
        wp[r] = wt[r];
      });
      unroll<C>([&](auto c) {
        std::memcpy(xt[c], a.x + c * a.x_row_bytes + i * L::kElemBytes, tail);
        xp[c] = xt[c];
      });
      step(wp, xp);
    }
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { a.y[c * a.ldy + r] = hsum256(acc[r][c]); }); });
  }
};

using KF32 = FloatKernel<LoadF32, 4, 2>;
using KF16 = FloatKernel<LoadF16, 4, 2>;
using KBF16 = FloatKernel<LoadBF16, 4, 2>;

constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

inline __m256 abs256(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float hmax256(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// 32 int32 (4 registers, values within int8) -> 32 int8 in order.
inline void store_i8x32(int8_t* dst, __m256i q0, __m256i q1, __m256i q2, __m256i q3) {
  const __m256i a = _mm256_packs_epi32(q0, q1);  // 0-3 8-11 | 4-7 12-15 (per 128-bit lane)
  const __m256i b = _mm256_packs_epi32(q2, q3);
  const __m256i c = _mm256_packs_epi16(a, b);
  _mm256_storeu_si256((__m256i*)dst, _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

// One Q8_0/Q8_1 block; returns the unrounded d, writes fp16(d) and qs; *sum = sum of qs.
inline float quantize_block32(const float* x, uint8_t* d_out, int8_t* qs, int* sum) {
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps();
  for (int j = 0; j < 4; ++j) {
    v[j] = _mm256_loadu_ps(x + 8 * j);
    amax = _mm256_max_ps(amax, abs256(v[j]));
  }
  const float mx = hmax256(amax);
  const float d = mx / 127.f;
  const float id = mx != 0.0f ? 127.f / mx : 0.0f;
  const uint16_t dh = _cvtss_sh(d, 0);
  std::memcpy(d_out, &dh, 2);
  __m256i q[4];
  for (int j = 0; j < 4; ++j) q[j] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[j], _mm256_set1_ps(id)), kRne));
  store_i8x32(qs, q[0], q[1], q[2], q[3]);
  if (sum != nullptr) *sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
  return d;
}

}  // namespace

void from_float_q8_0(const float* src, void* dst, int64_t n) {
  uint8_t* b = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / 32; ++i, b += 34) quantize_block32(src + i * 32, b, (int8_t*)(b + 2), nullptr);
}

void from_float_q8_1(const float* src, void* dst, int64_t n) {
  uint8_t* b = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / 32; ++i, b += 36) {
    int sum;
    const float d = quantize_block32(src + i * 32, b, (int8_t*)(b + 4), &sum);
    const uint16_t s = _cvtss_sh(d * (float)sum, 0);
    std::memcpy(b + 2, &s, 2);
  }
}

void from_float_q8_K(const float* src, void* dst, int64_t n) {
  uint8_t* b = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / 256; ++i, b += 292, src += 256) {
    __m256 amax_v = _mm256_setzero_ps();
    for (int j = 0; j < 32; ++j) amax_v = _mm256_max_ps(amax_v, abs256(_mm256_loadu_ps(src + 8 * j)));
    const float amax = hmax256(amax_v);
    if (!amax) {
      std::memset(b, 0, 292);
      continue;
    }
    float max = 0.f;  // first element of largest magnitude, with its sign (as the scalar loop)
    for (int j = 0; j < 32; ++j) {
      const __m256 eq = _mm256_cmp_ps(abs256(_mm256_loadu_ps(src + 8 * j)), _mm256_set1_ps(amax), _CMP_EQ_OQ);
      const int m = _mm256_movemask_ps(eq);
      if (m) {
        max = src[8 * j + __builtin_ctz(m)];
        break;
      }
    }
    const float iscale = -127.f / max;
    int16_t bsums[16];
    for (int g = 0; g < 8; ++g) {  // 32 values per iteration = 2 bsums
      __m256i q[4];
      for (int j = 0; j < 4; ++j) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(src + 32 * g + 8 * j), _mm256_set1_ps(iscale));
        q[j] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_round_ps(v, kRne)), _mm256_set1_epi32(127));
      }
      store_i8x32((int8_t*)(b + 4 + 32 * g), q[0], q[1], q[2], q[3]);
      bsums[2 * g] = (int16_t)hsum_i32(_mm256_add_epi32(q[0], q[1]));
      bsums[2 * g + 1] = (int16_t)hsum_i32(_mm256_add_epi32(q[2], q[3]));
    }
    std::memcpy(b + 260, bsums, sizeof bsums);
    const float d = 1 / iscale;
    std::memcpy(b, &d, 4);
  }
}

void from_float_f16(const float* src, void* dst, int64_t n) {
  uint16_t* h = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i*)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), kRne));
  for (; i < n; ++i) h[i] = f32_to_fp16(src[i]);
}

void from_float_bf16(const float* src, void* dst, int64_t n) {
  uint16_t* h = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  for (; i + 8 <= n; i += 8) {
    const __m256i u = _mm256_loadu_si256((const __m256i*)(src + i));
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);  // both non-negative
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
    const __m256i out = _mm256_blendv_epi8(r, qnan, nan);
    _mm_storeu_si128((__m128i*)(h + i),
                     _mm_packus_epi32(_mm256_castsi256_si128(out), _mm256_extracti128_si256(out, 1)));
  }
  for (; i < n; ++i) h[i] = f32_to_bf16(src[i]);
}

void vec_dot_f32(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KF32>(n, s, x, y); }
void vec_dot_f16(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KF16>(n, s, x, y); }
void vec_dot_bf16(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KBF16>(n, s, x, y); }

void gemm_f32(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
              float* y, int64_t ldy) {
  gemm_tiles<KF32>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_f16(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
              float* y, int64_t ldy) {
  gemm_tiles<KF16>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}
void gemm_bf16(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb, int64_t T,
               float* y, int64_t ldy) {
  gemm_tiles<KBF16>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}

}  // namespace avx2

void quant_fill_avx2(QuantTraits* row) {
  using namespace avx2;
  switch (row->type) {
    case DType::F32: row->vec_dot = vec_dot_f32; row->gemm = gemm_f32; break;
    case DType::F16: row->from_float = from_float_f16; row->vec_dot = vec_dot_f16; row->gemm = gemm_f16; break;
    case DType::BF16: row->from_float = from_float_bf16; row->vec_dot = vec_dot_bf16; row->gemm = gemm_bf16; break;
    case DType::Q4_0: row->vec_dot = vec_dot_q4_0; row->gemm = gemm_q4_0; break;
    case DType::Q4_1: row->vec_dot = vec_dot_q4_1; row->gemm = gemm_q4_1; break;
    case DType::Q5_0: row->vec_dot = vec_dot_q5_0; row->gemm = gemm_q5_0; break;
    case DType::Q5_1: row->vec_dot = vec_dot_q5_1; row->gemm = gemm_q5_1; break;
    case DType::Q8_0: row->from_float = from_float_q8_0; row->vec_dot = vec_dot_q8_0; row->gemm = gemm_q8_0; break;
    case DType::Q8_1: row->from_float = from_float_q8_1; break;
    case DType::Q4_K: row->vec_dot = vec_dot_q4_K; row->gemm = gemm_q4_K; break;
    case DType::Q5_K: row->vec_dot = vec_dot_q5_K; row->gemm = gemm_q5_K; break;
    case DType::Q6_K: row->vec_dot = vec_dot_q6_K; row->gemm = gemm_q6_K; break;
    case DType::Q8_K: row->from_float = from_float_q8_K; break;
    case DType::IQ4_NL: row->vec_dot = vec_dot_iq4_nl; row->gemm = gemm_iq4_nl; break;
    default: break;
  }
}

}  // namespace frugal
