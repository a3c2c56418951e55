// Repacked weights (QuantTraits::repack / gemm_repacked, quant_repack_avx512.cpp, K-quants in
// quant_kquants_avx512.cpp, sparse types expanded then repacked in sparse_quant.cpp) and their cache in
// MatmulScratch:
//  * gemm_repacked == the same ISA's vec_dot bit for bit for every (row, token), for ragged N (groups of
//    16 padded), row ranges that start/end inside a group, many T (decode, batched decode, prefill) and
//    K over several blocks; rows outside the range untouched;
//  * matmul_cpu gives the same bits with repacking on and off, for 1/2/3 threads and any T;
//  * the cache recognizes a different weight at a recycled address, and honors its byte limit.
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

// The N:M sparse types over Q8_0 / Q4_0 repack into their dense base's form (backend/sparse_quant.cpp).
const DType kRepackTypes[] = {DType::Q4_0,      DType::Q5_0,      DType::Q8_0,      DType::IQ4_NL,
                               DType::Q4_K,      DType::Q5_K,      DType::Q6_K,      DType::Q8_0_S2_4,
                               DType::Q8_0_S1_4, DType::Q4_0_S2_4, DType::Q8_0_S4_8, DType::Q4_0_S2_8};

std::vector<float> normal(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
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

// Types with a repacked kernel on some ISA this CPU runs (empty on CPUs without AVX-512).
std::vector<std::pair<Isa, const QuantTraits*>> repacked_traits() {
  std::vector<std::pair<Isa, const QuantTraits*>> v;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (!isa_supported(isa)) continue;
    for (DType t : kRepackTypes) {
      const QuantTraits* tr = quant_traits(t, isa);
      if (tr->repack != nullptr) v.push_back({isa, tr});
    }
  }
  return v;
}

TEST(RepackedGemm, AvailableWithAvx512) {
  if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512";
  EXPECT_EQ(repacked_traits().size(), std::size(kRepackTypes));
}

TEST(RepackedGemm, EqualsVecDotBitForBit) {
  for (auto [isa, t] : repacked_traits()) {
    const std::vector<int64_t> ks = dtype_block_size(t->type) == 256 ? std::vector<int64_t>{256, 768, 2816}
                                                                     : std::vector<int64_t>{32, 96, 17 * 32, 165 * 32};
    for (int64_t K : ks) {
      for (int64_t N : {1, 15, 16, 17, 45}) {
        const int64_t T = 33;
        const std::vector<uint8_t> w = quantize_rows(t->type, normal(N * K, 7 + (uint32_t)N), N, K);
        const QuantTraits* vt = quant_traits(t->vec_dot_type, isa);
        const size_t wrb = dtype_row_bytes(t->type, K), xrb = dtype_row_bytes(t->vec_dot_type, K);
        const std::vector<float> xf = normal(T * K, 8);
        std::vector<uint8_t> x(xrb * T);
        for (int64_t tok = 0; tok < T; ++tok) vt->from_float(xf.data() + tok * K, x.data() + tok * xrb, K);
        std::vector<float> expect(T * N);
        for (int64_t tok = 0; tok < T; ++tok)
          for (int64_t r = 0; r < N; ++r) t->vec_dot(K, &expect[tok * N + r], w.data() + r * wrb, x.data() + tok * xrb);
        const int64_t groups = (N + kRepackRows - 1) / kRepackRows;
        const size_t gb = t->repack_group_bytes(K);
        ASSERT_EQ(gb % 64, 0u);
        std::vector<uint8_t> buf(groups * gb + 64);
        uint8_t* wp = buf.data() + ((64 - (reinterpret_cast<uintptr_t>(buf.data()) & 63)) & 63);
        t->repack(K, w.data(), wrb, N, 0, 1, wp);  // in two calls, as threads build it
        t->repack(K, w.data(), wrb, N, 1, groups, wp + gb);
        for (int64_t tokens : {1, 2, 3, 4, 5, 8, 16, 17, 33}) {
          for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, N}, {3, N - 2}, {16, N}, {0, 1}}) {
            if (r0 >= r1) continue;
            std::vector<float> y(T * N, -1.f);
            t->gemm_repacked(K, wp, r0, r1, x.data(), xrb, tokens, y.data(), N);
            for (int64_t tok = 0; tok < T; ++tok)
              for (int64_t r = 0; r < N; ++r) {
                const bool inside = tok < tokens && r >= r0 && r < r1;
                const float want = inside ? expect[tok * N + r] : -1.f;
                ASSERT_EQ(f32_to_bits(y[tok * N + r]), f32_to_bits(want))
                    << isa_name(isa) << " " << dtype_name(t->type) << " K=" << K << " N=" << N << " T=" << tokens
                    << " r=" << r << " t=" << tok << " rows [" << r0 << "," << r1 << ")";
              }
          }
        }
      }
    }
  }
}

TEST(RepackedGemm, MatmulSameBitsWithAndWithoutRepack) {
  ThreadPool pool2(2), pool3(3);
  for (auto [isa, t] : repacked_traits()) {
    const int64_t K = 1280, N = 173;
    const std::vector<uint8_t> wq = quantize_rows(t->type, normal(N * K, 21), N, K);
    const WeightView w{t->type, K, N, wq.data(), dtype_row_bytes(t->type, K)};
    for (int64_t T : {2, 4, 8, 16, 64}) {
      const std::vector<float> x = normal(T * K, 22 + (uint32_t)T);
      std::vector<float> plain(T * N), y(T * N);
      MatmulScratch off, on;
      off.set_repack(false);
      matmul_cpu(&pool2, isa, w, x.data(), T, plain.data(), off);
      EXPECT_EQ(off.repacked_bytes(), 0u);
      for (ThreadPool* p : {(ThreadPool*)nullptr, &pool2, &pool3}) {
        matmul_cpu(p, isa, w, x.data(), T, y.data(), on);
        for (int64_t i = 0; i < T * N; ++i)
          ASSERT_EQ(f32_to_bits(y[i]), f32_to_bits(plain[i])) << dtype_name(t->type) << " T=" << T << " i=" << i;
      }
      EXPECT_EQ(on.repacked_bytes(), T >= t->repack_min_T ? (size_t)((N + 15) / 16) * t->repack_group_bytes(K) : 0u);
      // matmul_multi: two jobs on the same weight, repacked once.
      std::vector<float> y2(T * N);
      const Backend::MatmulJob jobs[] = {{w, x.data(), T, y.data()}, {w, x.data(), T, y2.data()}};
      matmul_cpu_multi(&pool2, isa, jobs, 2, on);
      for (int64_t i = 0; i < T * N; ++i) {
        ASSERT_EQ(f32_to_bits(y[i]), f32_to_bits(plain[i])) << dtype_name(t->type) << " multi T=" << T;
        ASSERT_EQ(f32_to_bits(y2[i]), f32_to_bits(plain[i])) << dtype_name(t->type) << " multi T=" << T;
      }
    }
  }
}

TEST(RepackedGemm, CacheRecognizesNewWeightAtSameAddressAndHonorsLimit) {
  for (auto [isa, t] : repacked_traits()) {
    const int64_t K = 256, N = 40, T = 9;  // T >= repack_min_T: the repacked path
    const size_t rb = dtype_row_bytes(t->type, K);
    std::vector<uint8_t> storage = quantize_rows(t->type, normal(N * K, 41), N, K);
    const WeightView w{t->type, K, N, storage.data(), rb};
    const std::vector<float> x = normal(T * K, 42);
    std::vector<float> y(T * N), fresh(T * N);
    MatmulScratch s;
    matmul_cpu(nullptr, isa, w, x.data(), T, y.data(), s);
    // A different matrix in the same memory (as a recycled allocation would be).
    const std::vector<uint8_t> other = quantize_rows(t->type, normal(N * K, 43), N, K);
    std::memcpy(storage.data(), other.data(), other.size());
    matmul_cpu(nullptr, isa, w, x.data(), T, y.data(), s);
    MatmulScratch s2;
    s2.set_repack(false);
    matmul_cpu(nullptr, isa, w, x.data(), T, fresh.data(), s2);
    for (int64_t i = 0; i < T * N; ++i) ASSERT_EQ(f32_to_bits(y[i]), f32_to_bits(fresh[i])) << dtype_name(t->type);
    EXPECT_EQ(s.repacked_bytes(), (size_t)3 * t->repack_group_bytes(K));
    // A limit below one weight: nothing is kept, same results.
    MatmulScratch small;
    small.set_repack(true, 64);
    matmul_cpu(nullptr, isa, w, x.data(), T, y.data(), small);
    EXPECT_EQ(small.repacked_bytes(), 0u);
    for (int64_t i = 0; i < T * N; ++i) ASSERT_EQ(f32_to_bits(y[i]), f32_to_bits(fresh[i])) << dtype_name(t->type);
  }
}

}  // namespace
}  // namespace frugal
