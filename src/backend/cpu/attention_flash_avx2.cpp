// AVX2/FMA/F16C twin of attention_flash_avx512 (same tiling, blocks and online softmax, 8 lanes).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/attention_avx512.h"

namespace frugal::ops {

namespace {

constexpr int64_t round8(int64_t n) { return (n + 7) & ~int64_t{7}; }

// Lanes [0, n) set (n clamped to [0, 8]).
inline __m256 lane_mask(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)std::min<int64_t>(n, 8)), idx));
}

// e^x for x <= 0, clamped below at -87 (e^-87 ~ 1.6e-38, still a normal float): the avx512 kernel's
// polynomial, 2^n built in the exponent bits.
inline __m256 exp_nonpos(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.f / 5040.f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 720.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// Lane j of the result = sum of the 8 lanes of v[j].
inline __m256 reduce8(const __m256* v) {
  const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

// dst[0, d) = values [off, off + d) of a K/V row as f32, dst[d, round8(d)) = 0.
void load_row(const uint8_t* row, DType type, int64_t off, int64_t d, float* dst) {
  if (type == DType::Q8_0) {  // off and d are multiples of 32
    const uint8_t* b = row + (size_t)(off >> 5) * 34;
    for (int64_t i = 0; i < d; i += 32, b += 34) {
      uint16_t h;
      std::memcpy(&h, b, 2);
      const __m256 sc = _mm256_set1_ps(_cvtsh_ss(h));
#pragma GCC unroll 16
      for (int k = 0; k < 4; ++k) {
        const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(b + 2 + 8 * k)));
        _mm256_storeu_ps(dst + i + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(q), sc));
      }
    }
    return;
  }
  int64_t i = 0;
  if (type == DType::F16) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + off;
    for (; i + 8 <= d; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(p + i))));
    for (; i < d; ++i) dst[i] = _cvtsh_ss(p[i]);
  } else {
    std::memcpy(dst, reinterpret_cast<const float*>(row) + off, (size_t)d * sizeof(float));
    i = d;
  }
  std::fill(dst + i, dst + round8(d), 0.f);
}

float block_scores(const float* q, const float* K, int64_t dkp, int64_t nv, float scale, float* S) {
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  const __m256 vscale = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
  for (int64_t jg = 0; jg < nv; jg += 8) {
    __m256 acc[8];
#pragma GCC unroll 16
    for (int r = 0; r < 8; ++r) acc[r] = _mm256_setzero_ps();
    const float* k = K + jg * dkp;
    for (int64_t d = 0; d < dkp; d += 8) {
      const __m256 qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 16
      for (int r = 0; r < 8; ++r) acc[r] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + r * dkp + d), acc[r]);
    }
    const __m256 sv = _mm256_blendv_ps(ninf, _mm256_mul_ps(reduce8(acc), vscale), lane_mask(nv - jg));
    _mm256_storeu_ps(S + jg, sv);
    vmax = _mm256_max_ps(vmax, sv);
  }
  return hmax(vmax);
}

float block_exp(float* S, int64_t nv, float m) {
  __m256 sum = _mm256_setzero_ps();
  const __m256 vm = _mm256_set1_ps(m);
  for (int64_t jg = 0; jg < nv; jg += 8) {
    const __m256 p =
        _mm256_and_ps(lane_mask(nv - jg), exp_nonpos(_mm256_sub_ps(_mm256_loadu_ps(S + jg), vm)));
    _mm256_storeu_ps(S + jg, p);
    sum = _mm256_add_ps(sum, p);
  }
  return hsum(sum);
}

void block_pv(float* o, const float* P, const float* V, int64_t vstride, int64_t nv, int64_t dvp, float factor) {
  const __m256 f = _mm256_set1_ps(factor);
  const bool rescale = factor != 1.f;
  int64_t d = 0;
  for (; d + 32 <= dvp; d += 32) {
    __m256 o0 = _mm256_loadu_ps(o + d), o1 = _mm256_loadu_ps(o + d + 8);
    __m256 o2 = _mm256_loadu_ps(o + d + 16), o3 = _mm256_loadu_ps(o + d + 24);
    if (rescale) {
      o0 = _mm256_mul_ps(o0, f), o1 = _mm256_mul_ps(o1, f), o2 = _mm256_mul_ps(o2, f), o3 = _mm256_mul_ps(o3, f);
    }
    const float* v = V + d;
    for (int64_t j = 0; j < nv; ++j, v += vstride) {
      const __m256 p = _mm256_set1_ps(P[j]);
      o0 = _mm256_fmadd_ps(p, _mm256_loadu_ps(v), o0);
      o1 = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8), o1);
      o2 = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 16), o2);
      o3 = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 24), o3);
    }
    _mm256_storeu_ps(o + d, o0), _mm256_storeu_ps(o + d + 8, o1);
    _mm256_storeu_ps(o + d + 16, o2), _mm256_storeu_ps(o + d + 24, o3);
  }
  for (; d < dvp; d += 8) {
    __m256 o0 = _mm256_loadu_ps(o + d);
    if (rescale) o0 = _mm256_mul_ps(o0, f);
    const float* v = V + d;
    for (int64_t j = 0; j < nv; ++j, v += vstride) o0 = _mm256_fmadd_ps(_mm256_set1_ps(P[j]), _mm256_loadu_ps(v), o0);
    _mm256_storeu_ps(o + d, o0);
  }
}

}  // namespace

void attention_flash_avx2(const FlashQuery* qs, int64_t nq, const KvView& kv, int64_t g, const AttentionShape& s,
                          FlashScratch* scratch) {
  const int64_t dk = s.Dh_k, dv = s.Dh_v, dkp = round8(dk), dvp = round8(dv), B = flash_kv_block(s);
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
      L[i] = L[i] * factor + block_exp(S, nv, m_new);
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
