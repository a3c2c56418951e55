#include "backend/ops_scalar.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/half.h"

namespace frugal::ops {

double sum_squares_finish(double* lanes, const float* x, int64_t i0, int64_t D) {
  for (int64_t i = i0; i < D; ++i) lanes[i % kSumLanes] += (double)x[i] * (double)x[i];
  for (int k = kSumLanes / 2; k >= 1; k /= 2)
    for (int j = 0; j < k; ++j) lanes[j] += lanes[j + k];
  return lanes[0];
}

float rms_scale(double sum_sq, int64_t D, float eps) {
  const float mean = (float)(sum_sq / (double)D);
  return 1.0f / std::sqrt(mean + eps);
}

void rms_norm_row(const float* x, const float* w, int64_t D, float eps, float* y) {
  double lanes[kSumLanes] = {0};
  const float scale = rms_scale(sum_squares_finish(lanes, x, 0, D), D, eps);
  if (w) {
    for (int64_t i = 0; i < D; ++i) y[i] = (x[i] * scale) * w[i];
  } else {
    for (int64_t i = 0; i < D; ++i) y[i] = x[i] * scale;
  }
}

float silu(float x) {
  // e^a for a = -x clamped as maxps / minps do it (a NaN becomes kExpMin; x keeps the NaN).
  float a = -x;
  a = a > kExpMin ? a : kExpMin;
  a = a < kExpMax ? a : kExpMax;
  const float n = std::nearbyint(a * kLog2e);
  float r = std::fma(-n, kLn2Hi, a);
  r = std::fma(-n, kLn2Lo, r);
  float p = kExpC[0];
  for (int i = 1; i < 8; ++i) p = std::fma(p, r, kExpC[i]);
  const float two_n = std::bit_cast<float>((uint32_t)((int32_t)n + 127) << 23);
  const float den = -x > kExpMax ? std::numeric_limits<float>::infinity() : std::fma(p, two_n, 1.0f);
  return x / den;
}

namespace {

float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
  return (float)n_dims * std::log((float)n_ctx_orig / (n_rot * 2.0f * (float)M_PI)) / (2.0f * std::log(base));
}

}  // namespace

void rope_cache(int32_t pos, const RopeParams& p, float* cs) {
  const float theta_scale = std::pow(p.freq_base, -2.0f / (float)p.n_dims);
  float low = 0.f, high = 0.f;
  if (p.ext_factor != 0.f) {
    low = std::max(0.f, std::floor(yarn_corr_dim(p.n_dims, p.n_ctx_orig, p.beta_fast, p.freq_base)));
    high = std::min((float)p.n_dims - 1, std::ceil(yarn_corr_dim(p.n_dims, p.n_ctx_orig, p.beta_slow, p.freq_base)));
  }
  float theta_base = (float)pos;
  for (int i0 = 0; i0 < p.n_dims; i0 += 2) {
    const float ff = p.freq_factors ? p.freq_factors[i0 / 2] : 1.0f;
    const float theta_extrap = theta_base / ff;
    const float theta_interp = p.freq_scale * theta_extrap;
    float theta = theta_interp;
    float mscale = p.attn_factor;
    if (p.ext_factor != 0.f) {
      const float y = ((float)(i0 / 2) - low) / std::max(0.001f, high - low);
      const float ramp = 1.f - std::min(1.f, std::max(0.f, y));
      const float mix = ramp * p.ext_factor;
      theta = theta_interp * (1 - mix) + theta_extrap * mix;
      mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
    }
    cs[i0] = std::cos(theta) * mscale;
    cs[i0 + 1] = std::sin(theta) * mscale;
    theta_base *= theta_scale;
  }
}

void rope_head(float* x, const float* cs, const RopeParams& p) {
  const int n = p.n_dims;
  if (p.mode == RopeMode::kNorm) {
    for (int i0 = 0; i0 < n; i0 += 2) {
      const float c = cs[i0], s = cs[i0 + 1];
      const float a = x[i0], b = x[i0 + 1];
      x[i0] = a * c - b * s;
      x[i0 + 1] = a * s + b * c;
    }
  } else {
    const int half = n / 2;
    for (int i0 = 0; i0 < n; i0 += 2) {
      const float c = cs[i0], s = cs[i0 + 1];
      const int i = i0 / 2;
      const float a = x[i], b = x[i + half];
      x[i] = a * c - b * s;
      x[i + half] = a * s + b * c;
    }
  }
}

namespace {

inline float kv_at(const uint8_t* r, DType type, int64_t col) {
  if (type == DType::Q8_0) {  // blocks of 32: {f16 d, int8 qs[32]}
    const uint8_t* b = r + (size_t)(col >> 5) * 34;
    uint16_t d;
    std::memcpy(&d, b, 2);
    return fp16_to_f32(d) * (float)(int8_t)b[2 + (col & 31)];
  }
  if (type == DType::F32) return reinterpret_cast<const float*>(r)[col];
  return fp16_to_f32(reinterpret_cast<const uint16_t*>(r)[col]);
}

}  // namespace

void attention_head(const float* q, const KvView& kv, int64_t g, int64_t n_visible, const AttentionShape& s,
                    float* scratch, float* out) {
  const int64_t dk = s.Dh_k, dv = s.Dh_v;
  float max_s = -INFINITY;
  for (int64_t t = 0; t < n_visible; ++t) {
    float acc = 0.f;
    if (kv.type == DType::F32) {
      const float* k = reinterpret_cast<const float*>(kv.k_row(t)) + g * dk;
      for (int64_t i = 0; i < dk; ++i) acc += q[i] * k[i];
    } else {
      for (int64_t i = 0; i < dk; ++i) acc += q[i] * kv_at(kv.k_row(t), kv.type, g * dk + i);
    }
    scratch[t] = acc * s.scale;
    max_s = std::max(max_s, scratch[t]);
  }
  double sum = 0.0;
  for (int64_t t = 0; t < n_visible; ++t) {
    const float e = std::exp(scratch[t] - max_s);
    scratch[t] = e;
    sum += e;
  }
  const float inv = (float)(1.0 / sum);
  for (int64_t i = 0; i < dv; ++i) out[i] = 0.f;
  for (int64_t t = 0; t < n_visible; ++t) {
    const float p = scratch[t] * inv;
    if (kv.type == DType::F32) {
      const float* v = reinterpret_cast<const float*>(kv.v_row(t)) + g * dv;
      for (int64_t i = 0; i < dv; ++i) out[i] += p * v[i];
    } else {
      for (int64_t i = 0; i < dv; ++i) out[i] += p * kv_at(kv.v_row(t), kv.type, g * dv + i);
    }
  }
}

void silu_mul(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = silu(g[i]) * u[i];
}

}  // namespace frugal::ops
