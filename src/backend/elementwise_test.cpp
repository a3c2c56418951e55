// RMSNorm and SiLU: the AVX2 / AVX-512 twins give the scalar kernels' bits (every length, tails,
// aliasing, special values), the scalar kernels are close to the textbook formulas (double sums, std::exp),
// and CpuBackend's parallel ops equal RefBackend's.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/elementwise.h"
#include "backend/isa.h"
#include "backend/ops_scalar.h"
#include "base/rng.h"
#include "base/thread_pool.h"

namespace frugal {
namespace {

using RmsFn = void (*)(const float*, const float*, int64_t, float, float*);
using SiluFn = void (*)(float*, const float*, int64_t);

struct Twin {
  const char* name;
  RmsFn rms;
  SiluFn silu;
};

std::vector<Twin> twins() {
  std::vector<Twin> v;
  if (isa_supported(Isa::kAvx2)) v.push_back({"avx2", &ops::rms_norm_row_avx2, &ops::silu_mul_avx2});
  if (isa_supported(Isa::kAvx512)) v.push_back({"avx512", &ops::rms_norm_row_avx512, &ops::silu_mul_avx512});
  return v;
}

std::vector<float> normal(int64_t n, uint64_t seed, float scale) {
  Rng r(seed);
  std::vector<float> v((size_t)n);
  for (float& f : v) {  // Box-Muller
    const double a = r.next_double_open0(), b = r.next_double();
    f = (float)(std::sqrt(-2.0 * std::log(a)) * std::cos(6.283185307179586 * b)) * scale;
  }
  return v;
}

void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i])) << what << " i=" << i << " " << a[i]
                                                                           << " vs " << b[i];
  }
}

TEST(Elementwise, RmsNormTwinsGiveScalarBits) {
  for (const Twin& t : twins()) {
    for (int64_t D : {1, 2, 7, 15, 16, 17, 31, 33, 64, 100, 2048, 2049, 5632}) {
      const std::vector<float> x = normal(D, (uint64_t)D, 3.f), w = normal(D, (uint64_t)D + 1, 1.f);
      for (const float* wp : {w.data(), (const float*)nullptr}) {
        std::vector<float> want((size_t)D), got((size_t)D, -1.f);
        ops::rms_norm_row(x.data(), wp, D, 1e-6f, want.data());
        t.rms(x.data(), wp, D, 1e-6f, got.data());
        expect_same_bits(want, got, std::string(t.name) + " D=" + std::to_string(D));
        std::vector<float> inplace = x;  // x and y alias
        t.rms(inplace.data(), wp, D, 1e-6f, inplace.data());
        expect_same_bits(want, inplace, std::string(t.name) + " in place D=" + std::to_string(D));
      }
    }
  }
}

TEST(Elementwise, RmsNormScalarIsCloseToTheFormula) {
  for (int64_t D : {1, 5, 2048, 5632}) {
    const std::vector<float> x = normal(D, 7, 50.f), w = normal(D, 8, 1.f);
    std::vector<float> y((size_t)D);
    ops::rms_norm_row(x.data(), w.data(), D, 1e-5f, y.data());
    long double ss = 0;
    for (float v : x) ss += (long double)v * v;
    const long double scale = 1.0L / std::sqrt(ss / D + 1e-5L);
    for (int64_t i = 0; i < D; ++i)
      EXPECT_NEAR(y[(size_t)i], (double)(x[(size_t)i] * scale * w[(size_t)i]), 2e-6 * std::fabs(y[(size_t)i]) + 1e-30);
  }
}

std::vector<float> silu_inputs() {
  std::vector<float> v = normal(1000, 3, 6.f);
  const float inf = std::numeric_limits<float>::infinity();
  for (float s : {0.f, -0.f, 1e-30f, -1e-30f, 1e-45f, 0.5f, 1.f, 10.f, 20.f, 60.f, 86.9f, 87.f, 87.5f, 88.f, 88.5f, 89.f,
                  100.f, 1e10f, 3e38f, inf, std::numeric_limits<float>::quiet_NaN()}) {
    v.push_back(s);
    v.push_back(-s);
  }
  return v;
}

TEST(Elementwise, SiluTwinsGiveScalarBits) {
  const std::vector<float> g = silu_inputs();
  const std::vector<float> u = normal((int64_t)g.size(), 4, 1.f);
  for (const Twin& t : twins()) {
    for (int64_t n : {(int64_t)0, (int64_t)1, (int64_t)7, (int64_t)8, (int64_t)15, (int64_t)16, (int64_t)17,
                      (int64_t)g.size()}) {
      std::vector<float> want(g.begin(), g.begin() + n), got = want;
      ops::silu_mul(want.data(), u.data(), n);
      t.silu(got.data(), u.data(), n);
      expect_same_bits(want, got, std::string(t.name) + " n=" + std::to_string(n));
    }
  }
}

TEST(Elementwise, SiluScalarIsCloseToTheFormula) {
  const std::vector<float> g = silu_inputs();
  for (float x : g) {
    const float got = ops::silu(x);
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(got));
      continue;
    }
    const double want = (double)x / (1.0 + std::exp(-(double)x));
    if (x < -88.f) {  // documented: -0 (x e^x is below 1e-36 there; -inf: NaN, as the formula)
      if (std::isinf(x)) {
        EXPECT_TRUE(std::isnan(got)) << got;
      } else {
        EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(-0.0f)) << x << " " << got;
      }
      continue;
    }
    if (std::isinf(want)) {
      EXPECT_EQ(got, want);
      continue;
    }
    EXPECT_NEAR(got, want, 4e-7 * std::fabs(want) + 1e-45) << x;
  }
}

// CpuBackend (2 threads, best ISA) == RefBackend on whole ops, including the parallel split of long rows.
TEST(Elementwise, CpuBackendEqualsReference) {
  ThreadPool pool(2);
  std::unique_ptr<Backend> ref = make_ref_backend();
  std::unique_ptr<Backend> cpu = make_cpu_backend(&pool, detect_isa());
  const int64_t T = 5, D = 2048, n = 70000;
  const std::vector<float> x = normal(T * D, 11, 2.f), w = normal(D, 12, 1.f);
  std::vector<float> a((size_t)(T * D)), b((size_t)(T * D));
  ref->rms_norm(x.data(), w.data(), T, D, 1e-6f, a.data());
  cpu->rms_norm(x.data(), w.data(), T, D, 1e-6f, b.data());
  expect_same_bits(a, b, "rms_norm");
  std::vector<float> g1 = normal(n, 13, 5.f), g2 = g1;
  const std::vector<float> u = normal(n, 14, 1.f);
  ref->silu_mul(g1.data(), u.data(), n);
  cpu->silu_mul(g2.data(), u.data(), n);
  expect_same_bits(g1, g2, "silu_mul");
  std::vector<float> s1 = normal(n, 15, 1.f), s2 = s1;
  ref->add(s1.data(), u.data(), n);
  cpu->add(s2.data(), u.data(), n);
  expect_same_bits(s1, s2, "add");
}

}  // namespace
}  // namespace frugal
