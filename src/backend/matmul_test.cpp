// Every format x every ISA this CPU has x odd shapes:
//  * activation conversion: SIMD bytes identical to the scalar quantizers (incl. ties, tails, specials);
//  * vec_dot: SIMD vs scalar within the per-format error budget below;
//  * gemm tiles == vec_dot of the same ISA, bit for bit, for any row range and token count;
//  * matmul_cpu vs matmul_ref within the budget, and bit-identical for 1/2/3 threads and any T.
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/matmul.h"
#include "backend/quant.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "gtest/gtest.h"

namespace frugal {
namespace {

// Error budget: |simd - scalar| <= tol * sum_i |w_i * x_i| (dequantized values). The integer parts
// are exact on every ISA; what differs is float summation order (scalar F32/F16/BF16 sum in double,
// SIMD in f32 lanes; K-quants apply block scales per lane) and, for BF16 with AVX512_BF16, vdpbf16ps'
// own rounding (two adds per pair, denormals flushed).
struct Budget {
  DType type;
  double tol;
};
constexpr Budget kBudgets[] = {
    {DType::F32, 2e-6},  {DType::F16, 2e-6},  {DType::BF16, 2e-5}, {DType::Q4_0, 1e-5},
    {DType::Q4_1, 1e-5}, {DType::Q5_0, 1e-5}, {DType::Q5_1, 1e-5}, {DType::Q8_0, 1e-5},
    {DType::Q4_K, 1e-5}, {DType::Q5_K, 1e-5}, {DType::Q6_K, 1e-5}, {DType::IQ4_NL, 1e-5},
};

std::vector<Isa> simd_isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::kAvx2, Isa::kAvx512})
    if (isa_supported(i)) v.push_back(i);
  return v;
}

std::vector<float> normal(int64_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v((size_t)n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<uint8_t> quantize_rows(DType t, const std::vector<float>& x, int64_t rows, int64_t K) {
  const size_t rb = dtype_row_bytes(t, K);
  std::vector<uint8_t> q(rb * rows);
  for (int64_t r = 0; r < rows; ++r) quantize_row_weights(t, x.data() + r * K, q.data() + r * rb, K);
  return q;
}

std::vector<uint8_t> activations(DType vt, Isa isa, const std::vector<float>& x, int64_t rows, int64_t K) {
  const size_t rb = dtype_row_bytes(vt, K);
  std::vector<uint8_t> q(rb * rows);
  for (int64_t r = 0; r < rows; ++r) quant_traits(vt, isa)->from_float(x.data() + r * K, q.data() + r * rb, K);
  return q;
}

// sum |w_i x_i| of the dequantized rows: the scale the error budget is relative to.
double abs_dot(DType wt, DType vt, const uint8_t* w, const uint8_t* x, int64_t K) {
  std::vector<float> a((size_t)K), b((size_t)K);
  quant_traits(wt, Isa::kScalar)->to_float(w, a.data(), K);
  quant_traits(vt, Isa::kScalar)->to_float(x, b.data(), K);
  double s = 0;
  for (int64_t i = 0; i < K; ++i) s += std::fabs((double)a[i] * b[i]);
  return s;
}

std::vector<int64_t> test_ks(DType t) {
  const int64_t bs = dtype_block_size(t);
  if (bs == 1) return {1, 7, 16, 31, 33, 100, 257};
  // The largest K spans several K chunks of the packed tiles (2048 elements each for 32-blocks).
  return {bs, 2 * bs, 3 * bs, 5 * bs, bs == 32 ? 17 * bs : 7 * bs, bs == 32 ? 165 * bs : 20 * bs};
}

// ---------------------------------------------------------------- activation bytes

std::vector<std::vector<float>> activation_cases(int64_t n) {
  std::vector<std::vector<float>> cases;
  for (float scale : {1.f, 1e-3f, 3e4f, 1e-30f}) cases.push_back(normal(n, 40 + (uint32_t)cases.size(), scale));
  std::vector<float> ties((size_t)n);
  for (int64_t i = 0; i < n; ++i) ties[i] = (i % 32 == 0) ? 127.f : (float)((i % 17) - 8) + 0.5f;
  cases.push_back(ties);
  std::vector<float> zeros((size_t)n, 0.f);
  for (int64_t i = n / 2; i < n; ++i) zeros[i] = (i % 3) ? -2.f : 2.f;  // equal magnitudes, signs differ
  cases.push_back(zeros);
  return cases;
}

TEST(SimdActivations, BytesIdenticalToScalar) {
  for (Isa isa : simd_isas()) {
    for (DType vt : {DType::F16, DType::BF16, DType::Q8_0, DType::Q8_1, DType::Q8_K}) {
      for (int64_t n : {256, 512, 2048}) {
        for (const std::vector<float>& x : activation_cases(n)) {
          const std::vector<uint8_t> a = activations(vt, Isa::kScalar, x, 1, n);
          const std::vector<uint8_t> b = activations(vt, isa, x, 1, n);
          ASSERT_EQ(a, b) << isa_name(isa) << " " << dtype_name(vt) << " n=" << n;
        }
      }
    }
  }
}

TEST(SimdActivations, HalfFormatsTailsAndSpecials) {
  std::vector<float> x = normal(37, 9);
  const float specials[] = {0.f, -0.f, INFINITY, -INFINITY, NAN, 65520.f, 65519.f, 1e-8f, -6e-5f,
                            bits_to_f32(0x00000001), bits_to_f32(0x7f800001), bits_to_f32(0x3f808000)};
  for (size_t i = 0; i < sizeof specials / sizeof specials[0]; ++i) x[i * 3] = specials[i];
  for (Isa isa : simd_isas()) {
    for (DType vt : {DType::F16, DType::BF16}) {
      for (int64_t n : {1, 15, 16, 17, 37}) {
        std::vector<float> xs(x.begin(), x.begin() + n);
        EXPECT_EQ(activations(vt, Isa::kScalar, xs, 1, n), activations(vt, isa, xs, 1, n))
            << isa_name(isa) << " " << dtype_name(vt) << " n=" << n;
      }
    }
  }
}

// ---------------------------------------------------------------- vec_dot and gemm

TEST(SimdVecDot, WithinBudgetOfScalar) {
  for (Isa isa : simd_isas()) {
    for (const Budget& b : kBudgets) {
      const QuantTraits* st = quant_traits(b.type, Isa::kScalar);
      const QuantTraits* vt = quant_traits(b.type, isa);
      for (int64_t K : test_ks(b.type)) {
        for (uint32_t seed = 0; seed < 4; ++seed) {
          const std::vector<float> wf = normal(K, 100 + seed), xf = normal(K, 200 + seed, seed == 3 ? 1e3f : 1.f);
          const std::vector<uint8_t> w = quantize_rows(b.type, wf, 1, K);
          const std::vector<uint8_t> x = activations(st->vec_dot_type, Isa::kScalar, xf, 1, K);
          float s_ref = 0, s = 0;
          st->vec_dot(K, &s_ref, w.data(), x.data());
          vt->vec_dot(K, &s, w.data(), x.data());
          const double mag = abs_dot(b.type, st->vec_dot_type, w.data(), x.data(), K);
          EXPECT_NEAR(s, s_ref, b.tol * mag + 1e-30)
              << isa_name(isa) << " " << dtype_name(b.type) << " K=" << K << " seed=" << seed;
        }
      }
    }
  }
}

TEST(SimdGemm, EqualsVecDotBitForBit) {
  for (Isa isa : simd_isas()) {
    for (const Budget& b : kBudgets) {
      const QuantTraits* t = quant_traits(b.type, isa);
      ASSERT_NE(t->gemm, nullptr) << isa_name(isa) << " " << dtype_name(b.type);
      for (int64_t K : test_ks(b.type)) {
        const int64_t N = 13, T = 17;
        const std::vector<uint8_t> w = quantize_rows(b.type, normal(N * K, 7), N, K);
        const std::vector<uint8_t> x = activations(t->vec_dot_type, isa, normal(T * K, 8), T, K);
        const size_t wrb = dtype_row_bytes(b.type, K), xrb = dtype_row_bytes(t->vec_dot_type, K);
        std::vector<float> expect(T * N);
        for (int64_t tok = 0; tok < T; ++tok)
          for (int64_t r = 0; r < N; ++r) t->vec_dot(K, &expect[tok * N + r], w.data() + r * wrb, x.data() + tok * xrb);
        for (int64_t tokens : {1, 3, 6, 17}) {
          for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, N}, {3, N - 2}, {5, 6}}) {
            std::vector<float> y(T * N, -1.f);
            t->gemm(K, w.data(), wrb, r0, r1, x.data(), xrb, tokens, y.data(), N);
            for (int64_t tok = 0; tok < T; ++tok)
              for (int64_t r = 0; r < N; ++r) {
                const bool inside = tok < tokens && r >= r0 && r < r1;
                const float want = inside ? expect[tok * N + r] : -1.f;
                ASSERT_EQ(f32_to_bits(y[tok * N + r]), f32_to_bits(want))
                    << isa_name(isa) << " " << dtype_name(b.type) << " K=" << K << " T=" << tokens << " r=" << r
                    << " t=" << tok << " rows [" << r0 << "," << r1 << ")";
              }
          }
        }
      }
    }
  }
}

TEST(SimdVecDot, IQ4NLExtremeCodesExact) {
  // Largest products the kernels can see: codebook ends (-127, 113) against activations of +-127,
  // arranged so that any int16 saturation (AVX2 vpmaddubsw pairs) or a wrong offset would show. With
  // d = 1 for both and a single block, every ISA's float steps are exact, so results equal the scalar.
  const int64_t K = 64;
  std::vector<uint8_t> w(dtype_row_bytes(DType::IQ4_NL, K)), x(dtype_row_bytes(DType::Q8_0, K));
  for (int64_t b = 0; b < K / 32; ++b) {
    uint8_t* wb = w.data() + b * 18;
    uint8_t* xb = x.data() + b * 34;
    const uint16_t one = 0x3C00;
    std::memcpy(wb, &one, 2);
    std::memcpy(xb, &one, 2);
    for (int j = 0; j < 16; ++j) wb[2 + j] = (uint8_t)(b == 0 ? (j % 2 ? 0x0F : 0x00) : (j % 3 ? 0xF0 : 0x0F));
    for (int j = 0; j < 32; ++j) xb[2 + j] = (uint8_t)(int8_t)((j + b) % 2 ? -127 : 127);
  }
  float want = 0;
  quant_traits(DType::IQ4_NL, Isa::kScalar)->vec_dot(K, &want, w.data(), x.data());
  for (Isa isa : simd_isas()) {
    float s = 0;
    quant_traits(DType::IQ4_NL, isa)->vec_dot(K, &s, w.data(), x.data());
    EXPECT_EQ(s, want) << isa_name(isa);
  }
  // Check the scalar by hand: block 0 codes alternate 0/15 in the low nibbles (elements 0..15) and are
  // 0 in the high ones; block 1 as written. Element values: code 0 = -127, 15 = 113.
  int64_t expect = 0;
  for (int64_t b = 0; b < K / 32; ++b)
    for (int j = 0; j < 32; ++j) {
      const uint8_t byte = w[b * 18 + 2 + (j % 16)];
      const int code = j < 16 ? (byte & 15) : (byte >> 4);
      expect += (code == 15 ? 113 : -127) * ((j + b) % 2 ? -127 : 127);
    }
  EXPECT_EQ(want, (float)expect);
}

// ---------------------------------------------------------------- matmul_cpu

TEST(MatmulCpu, MatchesRefAndIsThreadAndBatchInvariant) {
  ThreadPool pool2(2), pool3(3);
  std::vector<Isa> isas = simd_isas();
  isas.push_back(Isa::kScalar);
  for (Isa isa : isas) {
    for (const Budget& b : kBudgets) {
      const int64_t K = test_ks(b.type)[2], N = 37, T = 17;
      const std::vector<float> wf = normal(N * K, 31), xf = normal(T * K, 32);
      const std::vector<uint8_t> wq = quantize_rows(b.type, wf, N, K);
      const WeightView w{b.type, K, N, wq.data(), dtype_row_bytes(b.type, K)};
      std::vector<float> ref(T * N), y1(T * N), y2(T * N), y3(T * N);
      matmul_ref(w, xf.data(), T, ref.data());
      MatmulScratch s;
      matmul_cpu(nullptr, isa, w, xf.data(), T, y1.data(), s);
      matmul_cpu(&pool2, isa, w, xf.data(), T, y2.data(), s);
      matmul_cpu(&pool3, isa, w, xf.data(), T, y3.data(), s);
      const std::string what = std::string(isa_name(isa)) + " " + dtype_name(b.type);
      const QuantTraits* st = quant_traits(b.type, Isa::kScalar);
      const std::vector<uint8_t> xq = activations(st->vec_dot_type, Isa::kScalar, xf, T, K);
      const size_t xrb = dtype_row_bytes(st->vec_dot_type, K);
      for (int64_t i = 0; i < T * N; ++i) {
        ASSERT_EQ(f32_to_bits(y1[i]), f32_to_bits(y2[i])) << what << " i=" << i;
        ASSERT_EQ(f32_to_bits(y1[i]), f32_to_bits(y3[i])) << what << " i=" << i;
        const double mag = abs_dot(b.type, st->vec_dot_type, wq.data() + (i % N) * w.row_bytes,
                                   xq.data() + (i / N) * xrb, K);
        ASSERT_NEAR(y1[i], ref[i], b.tol * mag + 1e-30) << what << " i=" << i;
      }
      // Batch invariance: token t alone, or in a batch of 3 starting at t, gives the same bits.
      for (int64_t tok : {0, 5, 14}) {
        std::vector<float> one(3 * N);
        matmul_cpu(&pool2, isa, w, xf.data() + tok * K, 3, one.data(), s);
        for (int64_t j = 0; j < 3; ++j)
          for (int64_t r = 0; r < N; ++r)
            ASSERT_EQ(f32_to_bits(one[j * N + r]), f32_to_bits(y1[(tok + j) * N + r])) << what;
        matmul_cpu(&pool3, isa, w, xf.data() + tok * K, 1, one.data(), s);
        for (int64_t r = 0; r < N; ++r) ASSERT_EQ(f32_to_bits(one[r]), f32_to_bits(y1[tok * N + r])) << what;
      }
    }
  }
}

TEST(MatmulCpu, LargeRowCountSplitsAcrossThreads) {
  // Enough rows that every thread gets a range, and a K that exercises several panels.
  ThreadPool pool(3);
  for (Isa isa : simd_isas()) {
    for (DType t : {DType::Q4_K, DType::Q8_0, DType::F16}) {
      const int64_t K = 512, N = 333, T = 5;
      const std::vector<uint8_t> wq = quantize_rows(t, normal(N * K, 51), N, K);
      const WeightView w{t, K, N, wq.data(), dtype_row_bytes(t, K)};
      const std::vector<float> x = normal(T * K, 52);
      std::vector<float> a(T * N), b(T * N);
      MatmulScratch s;
      matmul_cpu(nullptr, isa, w, x.data(), T, a.data(), s);
      matmul_cpu(&pool, isa, w, x.data(), T, b.data(), s);
      for (int64_t i = 0; i < T * N; ++i) ASSERT_EQ(f32_to_bits(a[i]), f32_to_bits(b[i])) << dtype_name(t);
    }
  }
}

TEST(GetRows, DequantizesSelectedRows) {
  const int64_t K = 256, N = 5;
  const std::vector<float> wf = normal(N * K, 61);
  const std::vector<uint8_t> wq = quantize_rows(DType::Q6_K, wf, N, K);
  const WeightView w{DType::Q6_K, K, N, wq.data(), dtype_row_bytes(DType::Q6_K, K)};
  const int32_t ids[] = {4, 0, 4};
  std::vector<float> out(3 * K), row(K);
  get_rows(w, ids, 3, out.data());
  for (int t = 0; t < 3; ++t) {
    quant_traits(DType::Q6_K, Isa::kScalar)->to_float(w.row(ids[t]), row.data(), K);
    for (int64_t i = 0; i < K; ++i) ASSERT_EQ(out[t * K + i], row[i]);
  }
  for (int64_t i = 0; i < K; ++i) EXPECT_NEAR(out[i], wf[4 * K + i], 0.1f);
}

}  // namespace
}  // namespace frugal
