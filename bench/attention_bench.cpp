// Micro-benchmarks of Backend::attention (CpuBackend, 2 threads) at TinyLlama-1.1B shapes (H 32, Hkv 4,
// Dh 64) and DeepSeek-V2-Lite MLA shapes (H 16, one latent KV head of 576, V = its first 512 columns):
// decode (T = 1) at n_kv 512 and 4096, and a 512-token prefill from an empty cache; F16 and Q8_0 K/V in a
// paged layout (blocks of 16 rows, shuffled). ISAs: avx2 and avx512 (flash-style kernels).
// Counters: KV_B/s = bytes of K and V the call must read at least once (n_kv rows) per second; FLOP/s =
// 2 * (Dh_k + Dh_v) * H * (visible keys summed over tokens) per second.
//
//   frugal_bench_kernels --benchmark_filter='Attention/'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/quant_ref.h"
#include "base/half.h"
#include "base/thread_pool.h"

namespace frugal {
namespace {

struct AttnShape {
  const char* name;
  int64_t H, Hkv, dk, dv;
  bool mla;
};

size_t kv_row_bytes(int64_t width, DType t) {
  return t == DType::Q8_0 ? (size_t)(width / 32) * 34 : (size_t)width * (t == DType::F32 ? 4 : 2);
}

void bm_attention(benchmark::State& st, AttnShape sh, DType type, Isa isa, int64_t n_kv, int64_t T) {
  if (!isa_supported(isa)) return st.SkipWithError("ISA not supported on this CPU");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const int64_t kw = sh.Hkv * sh.dk, vw = sh.Hkv * sh.dv, n_blocks = (n_kv + 15) / 16;
  const size_t kb = kv_row_bytes(kw, type), vb = kv_row_bytes(vw, type);
  std::vector<uint8_t> k(kb * (size_t)n_blocks * 16), v(sh.mla ? 0 : vb * (size_t)n_blocks * 16);
  std::vector<float> row((size_t)std::max(kw, vw));
  auto fill = [&](uint8_t* dst, int64_t w) {
    for (int64_t i = 0; i < w; ++i) row[(size_t)i] = u(rng);
    if (type == DType::Q8_0) return qref::from_float_q8_0(row.data(), dst, w);
    for (int64_t i = 0; i < w; ++i) reinterpret_cast<uint16_t*>(dst)[i] = f32_to_fp16(row[(size_t)i]);
  };
  for (int64_t r = 0; r < n_blocks * 16; ++r) {
    fill(k.data() + kb * (size_t)r, kw);
    if (!sh.mla) fill(v.data() + vb * (size_t)r, vw);
  }
  std::vector<int32_t> table((size_t)n_blocks);
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng);
  KvView kv;
  kv.type = type;
  kv.k = k.data();
  kv.v = sh.mla ? k.data() : v.data();
  kv.k_row_bytes = kb;
  kv.v_row_bytes = sh.mla ? kb : vb;
  kv.n_kv = n_kv;
  kv.block_table = table.data();
  kv.block_shift = 4;
  std::vector<float> q((size_t)(T * sh.H * sh.dk)), out((size_t)(T * sh.H * sh.dv));
  for (float& x : q) x = u(rng);
  std::vector<int32_t> pos((size_t)T);
  double visible = 0;
  for (int64_t t = 0; t < T; ++t) {
    pos[(size_t)t] = (int32_t)(n_kv - T + t);
    visible += (double)(pos[(size_t)t] + 1);
  }
  const AttentionShape s{sh.H, sh.Hkv, sh.dk, sh.dv, 1.f / 8.f};
  ThreadPool pool(2);
  auto be = make_cpu_backend(&pool, isa);
  for (auto _ : st) {
    be->attention(q.data(), sh.H * sh.dk, pos.data(), T, kv, s, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  const double kv_bytes = (double)n_kv * (double)(kb + (sh.mla ? 0 : vb));
  st.counters["KV_B/s"] = benchmark::Counter(kv_bytes, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["FLOP/s"] = benchmark::Counter(2.0 * (double)(sh.dk + sh.dv) * (double)sh.H * visible,
                                             benchmark::Counter::kIsIterationInvariantRate);
}

const int kRegistered = [] {
  const AttnShape shapes[] = {{"llama1b", 32, 4, 64, 64, false}, {"mla_lite", 16, 1, 576, 512, true}};
  const std::pair<Isa, const char*> isas[] = {{Isa::kAvx2, "avx2"}, {Isa::kAvx512, "avx512"}};
  const std::pair<DType, const char*> types[] = {{DType::F16, "f16"}, {DType::Q8_0, "q8_0"}};
  for (const AttnShape& sh : shapes)
    for (const auto& [type, tname] : types)
      for (const auto& [isa, iname] : isas) {
        const std::string base = std::string("Attention/") + sh.name + "/" + tname + "/" + iname;
        for (int64_t n_kv : {512, 4096})
          benchmark::RegisterBenchmark((base + "/decode/n_kv" + std::to_string(n_kv)).c_str(), bm_attention, sh,
                                       type, isa, n_kv, 1)
              ->Unit(benchmark::kMicrosecond)
              ->UseRealTime();
        benchmark::RegisterBenchmark((base + "/prefill512").c_str(), bm_attention, sh, type, isa, 512, 512)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
  return 0;
}();

}  // namespace
}  // namespace frugal
