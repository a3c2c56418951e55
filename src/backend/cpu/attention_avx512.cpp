#include "backend/cpu/attention_avx512.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace frugal::ops {

namespace {

constexpr int64_t round16(int64_t n) { return (n + 15) & ~int64_t{15}; }

// e^x for x <= 0 (x = -inf gives ~0): n = round(x / ln2), r = x - n ln2, e^r by its degree-7 Taylor
// polynomial (|r| <= ln2/2: relative error < 1e-8), times 2^n (scalef also handles the underflow).
inline __m512 exp_nonpos(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.f));
  const __m512 n =
      _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.f / 5040.f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 720.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

// Lane j of the result = sum of the 16 lanes of v[j].
inline __m512 reduce16(const __m512* v) {
  __m512 a[8], b[4], c[2];
#pragma GCC unroll 16
  for (int k = 0; k < 8; ++k)  // per 128-bit lane: [x0+x2, y0+y2, x1+x3, y1+y3]
    a[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
#pragma GCC unroll 16
  for (int k = 0; k < 4; ++k) {  // per 128-bit lane: the 4 keys' sums over that lane
    const __m512d x = _mm512_castps_pd(a[2 * k]), y = _mm512_castps_pd(a[2 * k + 1]);
    b[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
#pragma GCC unroll 16
  for (int k = 0; k < 2; ++k)  // [keys 0-3 lanes 0+1, keys 0-3 lanes 2+3, keys 4-7 ..., keys 4-7 ...]
    c[k] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], 0x88),
                         _mm512_shuffle_f32x4(b[2 * k], b[2 * k + 1], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x88), _mm512_shuffle_f32x4(c[0], c[1], 0xDD));
}

// dst[0, d) = values [off, off + d) of a K/V row as f32, dst[d, round16(d)) = 0.
void load_row(const uint8_t* row, DType type, int64_t off, int64_t d, float* dst) {
  const int64_t dp = round16(d);
  if (type == DType::Q8_0) {  // off and d are multiples of 32: whole blocks {f16 scale, int8 qs[32]}
    const uint8_t* b = row + (size_t)(off >> 5) * 34;
    for (int64_t i = 0; i < d; i += 32, b += 34) {
      uint16_t h;
      std::memcpy(&h, b, 2);
      const __m512 sc = _mm512_set1_ps(_cvtsh_ss(h));
      const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(b + 2))));
      const __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(b + 18))));
      _mm512_storeu_ps(dst + i, _mm512_mul_ps(lo, sc));
      _mm512_storeu_ps(dst + i + 16, _mm512_mul_ps(hi, sc));
    }
    return;
  }
  if (type == DType::F16) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + off;
    int64_t i = 0;
    for (; i + 16 <= d; i += 16) _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p + i))));
    if (i < d) {
      const __mmask16 m = (__mmask16)((1u << (d - i)) - 1);
      _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p + i)));
    }
    return;
  }
  std::memcpy(dst, reinterpret_cast<const float*>(row) + off, (size_t)d * sizeof(float));
  std::fill(dst + d, dst + dp, 0.f);
}

// S[0, nv) = q·K[j] * scale for the block's rows j (K rows dkp apart), S[nv, round16(nv)) = -inf.
// Returns the maximum of S[0, nv).
float block_scores(const float* q, const float* K, int64_t dkp, int64_t nv, float scale, float* S) {
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  const __m512 vscale = _mm512_set1_ps(scale);
  for (int64_t jg = 0; jg < nv; jg += 16) {
    __m512 acc[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_ps();
    const float* k = K + jg * dkp;
    for (int64_t d = 0; d < dkp; d += 16) {
      const __m512 qv = _mm512_loadu_ps(q + d);
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r) acc[r] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k + r * dkp + d), acc[r]);
    }
    const int64_t left = nv - jg;
    const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    const __m512 sv = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), m, _mm512_mul_ps(reduce16(acc), vscale));
    _mm512_storeu_ps(S + jg, sv);
    vmax = _mm512_max_ps(vmax, sv);
  }
  return _mm512_reduce_max_ps(vmax);
}

// S[j] = exp(S[j] - m) for j < nv (0 beyond, up to round16(nv)); returns their sum.
float block_exp(float* S, int64_t nv, float m) {
  __m512 sum = _mm512_setzero_ps();
  const __m512 vm = _mm512_set1_ps(m);
  for (int64_t jg = 0; jg < nv; jg += 16) {
    const int64_t left = nv - jg;
    const __mmask16 mk = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    const __m512 p = _mm512_maskz_mov_ps(mk, exp_nonpos(_mm512_sub_ps(_mm512_loadu_ps(S + jg), vm)));
    _mm512_storeu_ps(S + jg, p);
    sum = _mm512_add_ps(sum, p);
  }
  return _mm512_reduce_add_ps(sum);
}

// o[0, dvp) = o * factor + sum_{j < nv} P[j] * V[j]  (V rows vstride apart).
void block_pv(float* o, const float* P, const float* V, int64_t vstride, int64_t nv, int64_t dvp, float factor) {
  const __m512 f = _mm512_set1_ps(factor);
  const bool rescale = factor != 1.f;
  int64_t d = 0;
  for (; d + 64 <= dvp; d += 64) {
    __m512 o0 = _mm512_loadu_ps(o + d), o1 = _mm512_loadu_ps(o + d + 16);
    __m512 o2 = _mm512_loadu_ps(o + d + 32), o3 = _mm512_loadu_ps(o + d + 48);
    if (rescale) {
      o0 = _mm512_mul_ps(o0, f), o1 = _mm512_mul_ps(o1, f), o2 = _mm512_mul_ps(o2, f), o3 = _mm512_mul_ps(o3, f);
    }
    const float* v = V + d;
    for (int64_t j = 0; j < nv; ++j, v += vstride) {
      const __m512 p = _mm512_set1_ps(P[j]);
      o0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v), o0);
      o1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v + 16), o1);
      o2 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v + 32), o2);
      o3 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v + 48), o3);
    }
    _mm512_storeu_ps(o + d, o0), _mm512_storeu_ps(o + d + 16, o1);
    _mm512_storeu_ps(o + d + 32, o2), _mm512_storeu_ps(o + d + 48, o3);
  }
  for (; d < dvp; d += 16) {
    __m512 o0 = _mm512_loadu_ps(o + d);
    if (rescale) o0 = _mm512_mul_ps(o0, f);
    const float* v = V + d;
    for (int64_t j = 0; j < nv; ++j, v += vstride) o0 = _mm512_fmadd_ps(_mm512_set1_ps(P[j]), _mm512_loadu_ps(v), o0);
    _mm512_storeu_ps(o + d, o0);
  }
}

}  // namespace

int64_t flash_kv_block(const AttentionShape& s) { return round16(s.Dh_k) <= 128 ? 64 : 32; }

void attention_flash_avx512(const FlashQuery* qs, int64_t nq, const KvView& kv, int64_t g, const AttentionShape& s,
                            FlashScratch* scratch) {
  const int64_t dk = s.Dh_k, dv = s.Dh_v, dkp = round16(dk), dvp = round16(dv), B = flash_kv_block(s);
  // MLA latent cache: V is the first Dh_v columns of the same K rows -> reuse the converted K block.
  const bool alias = kv.v == kv.k && kv.v_row_bytes == kv.k_row_bytes && g * dk == g * dv && dv <= dk;
  const size_t need = (size_t)(nq * (dkp + dvp + 2) + B * dkp + (alias ? 0 : B * dvp) + B);
  if (scratch->buf.size() < need) scratch->buf.resize(need);
  float* Q = scratch->buf.data();
  float* O = Q + nq * dkp;
  float* M = O + nq * dvp;
  float* L = M + nq;
  float* Kf = L + nq;
  float* Vf = Kf + B * dkp;
  float* S = alias ? Vf : Vf + B * dvp;
  const float* V = alias ? Kf : Vf;
  const int64_t vstride = alias ? dkp : dvp;

  int64_t max_vis = 0;
  for (int64_t i = 0; i < nq; ++i) {
    std::memcpy(Q + i * dkp, qs[i].q, (size_t)dk * sizeof(float));
    std::fill(Q + i * dkp + dk, Q + (i + 1) * dkp, 0.f);
    std::fill(O + i * dvp, O + (i + 1) * dvp, 0.f);
    M[i] = -INFINITY;
    L[i] = 0.f;
    max_vis = std::max(max_vis, qs[i].n_visible);
  }
  max_vis = std::min(max_vis, kv.n_kv);
  for (int64_t kb = 0; kb < max_vis; kb += B) {
    const int64_t nb = std::min(B, max_vis - kb);
    for (int64_t j = 0; j < nb; ++j) {
      load_row(kv.k_row(kb + j), kv.type, g * dk, dk, Kf + j * dkp);
      if (!alias) load_row(kv.v_row(kb + j), kv.type, g * dv, dv, Vf + j * dvp);
    }
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t nv = std::min(B, std::min(qs[i].n_visible, kv.n_kv) - kb);
      if (nv <= 0) continue;
      const float bmax = block_scores(Q + i * dkp, Kf, dkp, nv, s.scale, S);
      const float m_new = std::max(M[i], bmax);
      const float factor = M[i] == -INFINITY ? 0.f : std::exp(M[i] - m_new);
      const float lsum = block_exp(S, nv, m_new);
      L[i] = L[i] * factor + lsum;
      M[i] = m_new;
      block_pv(O + i * dvp, S, V, vstride, nv, dvp, factor);
    }
  }
  for (int64_t i = 0; i < nq; ++i) {
    const float inv = 1.f / L[i];
    for (int64_t d = 0; d < dv; ++d) qs[i].out[d] = O[i * dvp + d] * inv;
  }
}

}  // namespace frugal::ops
