// Micro-benchmarks of the quantized kernels (frugal_bench_kernels): vec_dot per format and ISA, and
// matmul_cpu for decode (T = 1), batched decode (T = 4, 16) and prefill (T = 64, 512) at TinyLlama-1.1B shapes (K = 2048,
// N = 5632), 1 and 2 threads. Counters: W_B/s = weight bytes streamed per second, FLOP/s = 2*K*N*T
// per second. Decode rotates over weight copies larger than the last-level cache so that every
// call streams W from DRAM, as a real decode step does. Matmul/ uses the repacked weights where the
// format has them (the engine's default; built before timing); MatmulNoRepack/ the raw rows. The N:M
// sparse types (names like Q8_0_S2_4) are magnitude-pruned copies of the same rows: compare their time
// with the dense base's (W_B/s counts the sparse bytes).
//
//   frugal_bench_kernels --benchmark_filter='Matmul/Q4_K.*T1/'    (Google Benchmark flags)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/matmul.h"
#include "backend/quant.h"
#include "base/thread_pool.h"
#include "tensor/sparse_nm.h"

namespace frugal {
namespace {

constexpr int64_t kK = 2048, kN = 5632;
constexpr size_t kColdBytes = size_t(1) << 30;  // decode rotates over at least this many weight bytes

const DType kTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1,
                        DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL};

// N:M sparse types benchmarked beside their dense base (tensor/sparse_nm.h): 2:4 and 1:4 on Q8_0, Q4_0, F16.
std::vector<DType> sparse_types() {
  std::vector<DType> v;
  for (DType base : {DType::Q8_0, DType::Q4_0, DType::F16})
    for (int n : {2, 1}) {
      DType t;
      if (sparse_type_for(base, n, 4, &t)) v.push_back(t);
    }
  return v;
}

std::vector<float> normal(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v((size_t)n);
  for (float& x : v) x = d(rng);
  return v;
}

// N rows of K: 64 distinct quantized rows repeated (quantizing 11M K-quant values would take seconds).
std::vector<uint8_t> make_weights(DType t, int64_t K, int64_t N) {
  const size_t rb = dtype_row_bytes(t, K);
  const int64_t distinct = 64;
  const std::vector<float> src = normal(distinct * K, 1);
  std::vector<uint8_t> base(rb * distinct);
  for (int64_t r = 0; r < distinct; ++r) quantize_row_weights(t, src.data() + r * K, base.data() + r * rb, K);
  std::vector<uint8_t> w(rb * N);
  for (int64_t r = 0; r < N; ++r) std::copy_n(base.data() + (r % distinct) * rb, rb, w.data() + r * rb);
  return w;
}

ThreadPool* pool_for(int threads) {
  static std::unique_ptr<ThreadPool> pools[3];
  if (threads <= 1) return nullptr;
  if (!pools[threads]) pools[threads] = std::make_unique<ThreadPool>(threads);
  return pools[threads].get();
}

void bm_vec_dot(benchmark::State& st, DType t, Isa isa) {
  const int64_t K = 4096;
  const QuantTraits* tr = quant_traits(t, isa);
  const std::vector<uint8_t> w = make_weights(t, K, 1);
  const std::vector<float> xf = normal(K, 2);
  std::vector<uint8_t> x(dtype_row_bytes(tr->vec_dot_type, K));
  if (tr->vec_dot_type == DType::F32) {
    std::memcpy(x.data(), xf.data(), K * 4);
  } else {
    quant_traits(tr->vec_dot_type, isa)->from_float(xf.data(), x.data(), K);
  }
  float s = 0;
  for (auto _ : st) {
    tr->vec_dot(K, &s, w.data(), x.data());
    benchmark::DoNotOptimize(s);
  }
  st.counters["W_B/s"] = benchmark::Counter((double)w.size() * st.iterations(), benchmark::Counter::kIsRate);
  st.counters["FLOP/s"] = benchmark::Counter(2.0 * K * st.iterations(), benchmark::Counter::kIsRate);
}

void bm_matmul(benchmark::State& st, DType t, Isa isa, int64_t T, int threads, bool repack) {
  const size_t rb = dtype_row_bytes(t, kK);
  const size_t bytes = rb * kN;
  std::vector<std::vector<uint8_t>> copies;
  copies.push_back(make_weights(t, kK, kN));
  if (T == 1)
    while (copies.size() * bytes < kColdBytes) copies.push_back(copies[0]);
  const std::vector<float> x = normal(T * kK, 3);
  std::vector<float> y(T * kN);
  MatmulScratch scratch;
  scratch.set_repack(repack);
  ThreadPool* pool = pool_for(threads);
  for (const auto& c : copies) {  // builds the repacked weights (as the engine's first step does)
    const WeightView w{t, kK, kN, c.data(), rb};
    matmul_cpu(pool, isa, w, x.data(), T, y.data(), scratch);
  }
  size_t next = 0;
  for (auto _ : st) {
    const WeightView w{t, kK, kN, copies[next].data(), rb};
    next = (next + 1) % copies.size();
    matmul_cpu(pool, isa, w, x.data(), T, y.data(), scratch);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["W_B/s"] = benchmark::Counter((double)bytes * st.iterations(), benchmark::Counter::kIsRate);
  st.counters["FLOP/s"] = benchmark::Counter(2.0 * kK * kN * T * st.iterations(), benchmark::Counter::kIsRate);
}

// Decode compute rate with W resident in L2 (K = 2048, N = 128): what a row tile costs when memory is
// not the limit. Decode is memory-bound when this is well above the DRAM rate of Matmul/.../T1.
void bm_matmul_hot(benchmark::State& st, DType t, Isa isa) {
  const int64_t N = 128;
  const size_t rb = dtype_row_bytes(t, kK);
  const std::vector<uint8_t> wq = make_weights(t, kK, N);
  const std::vector<float> x = normal(kK, 3);
  std::vector<float> y(N);
  MatmulScratch scratch;
  const WeightView w{t, kK, N, wq.data(), rb};
  for (auto _ : st) {
    matmul_cpu(nullptr, isa, w, x.data(), 1, y.data(), scratch);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["W_B/s"] = benchmark::Counter((double)rb * N * st.iterations(), benchmark::Counter::kIsRate);
}

void register_all() {
  std::vector<Isa> isas;
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    if (isa_supported(i)) isas.push_back(i);
  std::vector<DType> types(std::begin(kTypes), std::end(kTypes));
  for (DType t : sparse_types()) types.push_back(t);
  for (DType t : types) {
    for (Isa isa : isas) {
      const std::string tag = std::string(dtype_name(t)) + "/" + isa_name(isa);
      benchmark::RegisterBenchmark(("VecDot/" + tag).c_str(), bm_vec_dot, t, isa);
      benchmark::RegisterBenchmark(("MatmulHotT1/" + tag).c_str(), bm_matmul_hot, t, isa);
      for (int64_t T : {1, 4, 16, 64, 512}) {
        if (isa == Isa::kScalar && T > 1) continue;  // minutes per iteration; not informative
        for (int threads : {1, 2}) {
          const std::string suffix = tag + "/T" + std::to_string(T) + "/threads:" + std::to_string(threads);
          for (bool repack : {true, false}) {
            if (!repack && quant_traits(t, isa)->repack == nullptr) continue;
            const std::string name = (repack ? "Matmul/" : "MatmulNoRepack/") + suffix;
            benchmark::RegisterBenchmark(name.c_str(), bm_matmul, t, isa, T, threads, repack)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond)
                ->MinTime(T == 512 ? 2.0 : 0.5);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace frugal

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::printf("cpu features: %s\n", frugal::cpu_features_string());
  frugal::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
