// AVX-512 row of the quant traits table: activation quantizers (bytes identical to the scalar ones in
// quant_ref*.cpp), float-format dot products and tiles (F32, F16, BF16), and the wiring of the
// block-format kernels from quant_legacy_avx512.cpp / quant_kquants_avx512.cpp.
//
// F32/F16/BF16 tiles: 16 elements per step (BF16 with AVX512_BF16: 32, vdpbf16ps), one FMA accumulator
// per (row, column), masked loads for the tail; scalar twins: qref::vec_dot_f32/f16/bf16 (which sum in
// double, hence the per-format error budget).
// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsic headers (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <cstring>

#include "backend/isa.h"
#include "backend/quant_avx512_util.h"
#include "backend/quant_gemm.h"
#include "backend/quant_isa.h"
#include "backend/quant_kernels.h"
#include "base/half.h"

namespace frugal {
namespace avx512 {
namespace {

// ---------------------------------------------------------------- float-format tiles

struct LoadF32 {
  static constexpr int kStep = 16, kElemBytes = 4;
  static __m512 load(const uint8_t* p) { return _mm512_loadu_ps(p); }
  static __m512 load_tail(const uint8_t* p, int n) {
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
  }
};

struct LoadF16 {
  static constexpr int kStep = 16, kElemBytes = 2;
  static __m512 load(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }
  static __m512 load_tail(const uint8_t* p, int n) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16((__mmask16)((1u << n) - 1), p));
  }
};

struct LoadBF16 {
  static constexpr int kStep = 16, kElemBytes = 2;
  static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static __m512 load(const uint8_t* p) { return widen(_mm256_loadu_si256((const __m256i*)p)); }
  static __m512 load_tail(const uint8_t* p, int n) {
    return widen(_mm256_maskz_loadu_epi16((__mmask16)((1u << n) - 1), p));
  }
};

// One FMA accumulator per (row, column), 16 elements per step, masked tail. Packed path (quant_gemm.h):
// rows and columns converted to f32 once (per L2 panel / per column tile and K chunk), so the inner
// loop is loads and FMAs; the values and the FMA order are the same, hence the same bits.
template <class L, int kR, int kC>
struct FloatKernel {
  static constexpr int kRows = kR, kCols = kC;
  static constexpr int64_t kStepElems = 16;
  static constexpr size_t kRowStepBytes = 64, kColStepBytes = 64;

  static void pack_f32(const uint8_t* src, int64_t k0, int64_t kn, uint8_t* dst) {
    for (int64_t i = 0; i < kn; i += 16, dst += 64) {
      const uint8_t* p = src + (k0 + i) * L::kElemBytes;
      _mm512_store_ps(dst, kn - i >= 16 ? L::load(p) : L::load_tail(p, (int)(kn - i)));
    }
  }
  static void pack_rows(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t n, uint8_t* dst) {
    const size_t prb = (size_t)((n + 15) / 16) * 64;
    for (int64_t r = 0; r < rows; ++r) pack_f32(w + r * w_row_bytes, 0, n, dst + r * prb);
  }
  static void pack_cols(const uint8_t* x, size_t x_row_bytes, int64_t cols, int64_t n, int64_t k0, int64_t kn,
                        uint8_t* dst) {
    const size_t pcb = (size_t)((kn + 15) / 16) * 64;
    for (int64_t c = 0; c < cols; ++c) pack_f32(x + c * x_row_bytes, k0, kn, dst + c * pcb);
  }

  template <int R, int C, bool kPackedW, bool kPackedX>
  static void tile_impl(const TileArgs& a) {
    constexpr bool kPacked = kPackedW && kPackedX;  // K chunks through a.acc
    __m512 acc[R][C];
    unroll<R>([&](auto r) {
      unroll<C>([&](auto c) {
        acc[r][c] = kPacked && a.acc_in ? _mm512_load_ps(a.acc + (r * C + c) * 16) : _mm512_setzero_ps();
      });
    });
    auto step = [&](int64_t i, int tail) __attribute__((always_inline)) {
      __m512 wv[R];
      unroll<R>([&](auto r) {
        if constexpr (kPackedW) {
          wv[r] = _mm512_load_ps(a.w + r * a.w_row_bytes + i * 4);
        } else {
          const uint8_t* p = a.w + r * a.w_row_bytes + i * L::kElemBytes;
          wv[r] = tail ? L::load_tail(p, tail) : L::load(p);
        }
      });
      unroll<C>([&](auto c) {
        __m512 xv;
        if constexpr (kPackedX) {
          xv = _mm512_load_ps(a.x + c * a.x_row_bytes + i * 4);
        } else {
          const uint8_t* p = a.x + c * a.x_row_bytes + i * L::kElemBytes;
          xv = tail ? L::load_tail(p, tail) : L::load(p);
        }
        unroll<R>([&](auto r) { acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]); });
      });
    };
    int64_t i = 0;
    for (; i + 16 <= a.n; i += 16) step(i, 0);
    if (i < a.n) step(i, (int)(a.n - i));
    if (kPacked && a.acc_out) {
      unroll<R>([&](auto r) { unroll<C>([&](auto c) { _mm512_store_ps(a.acc + (r * C + c) * 16, acc[r][c]); }); });
      return;
    }
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { a.y[c * a.ldy + r] = hsum512(acc[r][c]); }); });
  }

  template <int R, int C>
  static void tile(const TileArgs& a) {
    tile_impl<R, C, false, false>(a);
  }
  template <int R, int C>
  static void tile_packed(const TileArgs& a) {
    tile_impl<R, C, true, true>(a);
  }
  template <int R, int C>
  static void tile_xpacked(const TileArgs& a) {
    tile_impl<R, C, false, true>(a);
  }
};

// BF16 pairs with vdpbf16ps: lane l += x[2l]*y[2l] + x[2l+1]*y[2l+1] (products exact, DAZ/FTZ).
template <int kR, int kC>
struct Bf16DpKernel {
  static constexpr int kRows = kR, kCols = kC;

  static __m512bh load(const uint8_t* p, int tail) {
    const __m512i v = tail ? _mm512_maskz_loadu_epi16((__mmask32)((1ull << tail) - 1), p)
                           : _mm512_loadu_si512(p);
    return (__m512bh)v;
  }

  template <int R, int C>
  static void tile(const TileArgs& a) {
    __m512 acc[R][C];
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { acc[r][c] = _mm512_setzero_ps(); }); });
    auto step = [&](int64_t i, int tail) __attribute__((always_inline)) {
      __m512bh wv[R];
      unroll<R>([&](auto r) { wv[r] = load(a.w + r * a.w_row_bytes + i * 2, tail); });
      unroll<C>([&](auto c) {
        const __m512bh xv = load(a.x + c * a.x_row_bytes + i * 2, tail);
        unroll<R>([&](auto r) { acc[r][c] = _mm512_dpbf16_ps(acc[r][c], wv[r], xv); });
      });
    };
    int64_t i = 0;
    for (; i + 32 <= a.n; i += 32) step(i, 0);
    if (i < a.n) step(i, (int)(a.n - i));
    unroll<R>([&](auto r) { unroll<C>([&](auto c) { a.y[c * a.ldy + r] = hsum512(acc[r][c]); }); });
  }
};

using KF32 = FloatKernel<LoadF32, 4, 6>;
using KF16 = FloatKernel<LoadF16, 4, 6>;
using KBF16 = FloatKernel<LoadBF16, 4, 6>;
using KBF16Dp = Bf16DpKernel<4, 6>;

// ---------------------------------------------------------------- activation quantizers

constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// One Q8_0/Q8_1 block: returns the unrounded d; writes fp16(d) and qs; *sum = sum of qs.
inline float quantize_block32(const float* x, uint8_t* d_out, int8_t* qs, int* sum) {
  const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  const float d = amax / 127.f;
  const float id = amax != 0.0f ? 127.f / amax : 0.0f;
  const uint16_t dh = _cvtss_sh(d, 0);
  std::memcpy(d_out, &dh, 2);
  const __m512 m = _mm512_set1_ps(id);
  const __m512i q0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, m), kRne);
  const __m512i q1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, m), kRne);
  _mm_storeu_si128((__m128i*)qs, _mm512_cvtsepi32_epi8(q0));
  _mm_storeu_si128((__m128i*)(qs + 16), _mm512_cvtsepi32_epi8(q1));
  if (sum != nullptr) *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
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
    __m512 v[16];
    __m512 amax_v = _mm512_setzero_ps();
    for (int j = 0; j < 16; ++j) {
      v[j] = _mm512_loadu_ps(src + 16 * j);
      amax_v = _mm512_max_ps(amax_v, _mm512_abs_ps(v[j]));
    }
    const float amax = _mm512_reduce_max_ps(amax_v);
    if (!amax) {
      std::memset(b, 0, 292);
      continue;
    }
    float max = 0.f;  // first element of largest magnitude, with its sign (as the scalar loop)
    for (int j = 0; j < 16; ++j) {
      const __mmask16 k = _mm512_cmp_ps_mask(_mm512_abs_ps(v[j]), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (k) {
        max = src[16 * j + __builtin_ctz(k)];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m512 m = _mm512_set1_ps(iscale);
    int16_t bsums[16];
    for (int j = 0; j < 16; ++j) {
      const __m512i q = _mm512_min_epi32(_mm512_cvt_roundps_epi32(_mm512_mul_ps(v[j], m), kRne),
                                         _mm512_set1_epi32(127));
      _mm_storeu_si128((__m128i*)(b + 4 + 16 * j), _mm512_cvtsepi32_epi8(q));
      bsums[j] = (int16_t)_mm512_reduce_add_epi32(q);
    }
    std::memcpy(b + 260, bsums, sizeof bsums);
    const float d = 1 / iscale;
    std::memcpy(b, &d, 4);
  }
}

void from_float_f16(const float* src, void* dst, int64_t n) {
  uint16_t* h = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i*)(h + i), _mm512_cvtps_ph(_mm512_loadu_ps(src + i), kRne));
  for (; i < n; ++i) h[i] = f32_to_fp16(src[i]);
}

void from_float_bf16(const float* src, void* dst, int64_t n) {
  uint16_t* h = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
  for (; i + 16 <= n; i += 16) {
    const __m512i u = _mm512_loadu_si512(src + i);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), inf);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(64));
    _mm256_storeu_si256((__m256i*)(h + i), _mm512_cvtepi32_epi16(r));
  }
  for (; i < n; ++i) h[i] = f32_to_bf16(src[i]);
}

// ---------------------------------------------------------------- float-format entry points

void vec_dot_f32(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KF32>(n, s, x, y); }
void vec_dot_f16(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KF16>(n, s, x, y); }
void vec_dot_bf16(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KBF16>(n, s, x, y); }
void vec_dot_bf16_dp(int64_t n, float* s, const void* x, const void* y) { vec_dot_tile<KBF16Dp>(n, s, x, y); }

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
void gemm_bf16_dp(int64_t n, const void* w, size_t wrb, int64_t r0, int64_t r1, const void* x, size_t xrb,
                  int64_t T, float* y, int64_t ldy) {
  gemm_tiles<KBF16Dp>(n, w, wrb, r0, r1, x, xrb, T, y, ldy);
}

}  // namespace avx512

void quant_fill_avx512(QuantTraits* row) {
  using namespace avx512;
  switch (row->type) {
    case DType::F32: row->vec_dot = vec_dot_f32; row->gemm = gemm_f32; break;
    case DType::F16: row->from_float = from_float_f16; row->vec_dot = vec_dot_f16; row->gemm = gemm_f16; break;
    case DType::BF16:
      row->from_float = from_float_bf16;
      row->vec_dot = cpu_has_avx512_bf16() ? vec_dot_bf16_dp : vec_dot_bf16;
      row->gemm = cpu_has_avx512_bf16() ? gemm_bf16_dp : gemm_bf16;
      break;
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
  fill_repacked(row);
}

}  // namespace frugal
