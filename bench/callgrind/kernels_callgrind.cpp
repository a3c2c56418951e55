// frugal_callgrind_kernels: runs one hot kernel a fixed number of times with callgrind instrumentation on
// only around those calls, so `valgrind --tool=callgrind --instr-atstart=no` counts exactly the kernel's
// instructions. Instruction counts do not move with machine load, unlike timings, which makes them the
// way to compare kernel changes on a shared machine (scripts/bench/callgrind-kernels.sh drives it).
//
// Usage: frugal_callgrind_kernels --list
//        frugal_callgrind_kernels CASE [--reps N]      CASE = matmul:TYPE:ISA:T  (e.g. matmul:Q4_0:avx2:16)
// Shapes: W is 512 rows of K = 2048 (a slice of a 1.1B model's matrices), x is T rows of K.
// Valgrind 3.19 does not decode AVX-512, so only the scalar and AVX2 kernels can be counted.
#include <valgrind/callgrind.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backend/matmul.h"
#include "backend/quant.h"
#include "tensor/dtype.h"

namespace frugal {
namespace {

constexpr int64_t kK = 2048, kN = 512;
const char* const kTypes[] = {"F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_0", "Q6_K", "IQ4_NL"};
const int64_t kTokens[] = {1, 4, 16, 64};

int usage() {
  std::fprintf(stderr, "usage: frugal_callgrind_kernels --list | matmul:TYPE:ISA:T [--reps N]\n");
  return 2;
}

bool parse_isa(const std::string& s, Isa* isa) {
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (s == isa_name(i)) {
      *isa = i;
      return true;
    }
  }
  return false;
}

int run_matmul(DType type, Isa isa, int64_t T, int reps) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> src((size_t)(kK * kN)), x((size_t)(kK * T)), y((size_t)(kN * T));
  for (float& v : src) v = nd(rng);
  for (float& v : x) v = nd(rng);
  const size_t rb = dtype_row_bytes(type, kK);
  std::vector<uint8_t> w(rb * kN);
  for (int64_t r = 0; r < kN; ++r) quantize_row_weights(type, src.data() + r * kK, w.data() + r * rb, kK);
  WeightView view{type, kK, kN, w.data(), rb};
  MatmulScratch scratch;
  matmul_cpu(nullptr, isa, view, x.data(), T, y.data(), scratch);  // warm-up: scratch growth, page faults
  CALLGRIND_START_INSTRUMENTATION;
  for (int i = 0; i < reps; ++i) matmul_cpu(nullptr, isa, view, x.data(), T, y.data(), scratch);
  CALLGRIND_STOP_INSTRUMENTATION;
  std::printf("matmul %s %s T=%lld reps=%d weight_bytes=%zu macs=%lld y0=%g\n", dtype_name(type), isa_name(isa),
              (long long)T, reps, w.size(), (long long)(kK * kN * T), (double)y[0]);
  return 0;
}

}  // namespace
}  // namespace frugal

int main(int argc, char** argv) {
  using namespace frugal;
  if (argc < 2) return usage();
  const std::string arg = argv[1];
  if (arg == "--list") {
    for (const char* t : kTypes)
      for (int64_t T : kTokens) std::printf("matmul:%s:avx2:%lld\n", t, (long long)T);
    return 0;
  }
  int reps = 3;
  if (argc == 4 && std::string(argv[2]) == "--reps") reps = std::atoi(argv[3]);
  else if (argc != 2) return usage();
  // matmul:TYPE:ISA:T
  std::vector<std::string> f;
  size_t p = 0;
  for (size_t q; (q = arg.find(':', p)) != std::string::npos; p = q + 1) f.push_back(arg.substr(p, q - p));
  f.push_back(arg.substr(p));
  DType type;
  Isa isa;
  if (f.size() != 4 || f[0] != "matmul" || !dtype_from_name(f[1], &type) || !parse_isa(f[2], &isa) || reps < 1)
    return usage();
  const int64_t T = std::atoll(f[3].c_str());
  if (T < 1 || !isa_supported(isa) || !quant_traits(type, isa)) {
    std::fprintf(stderr, "frugal_callgrind_kernels: %s not available here\n", arg.c_str());
    return 1;
  }
  return run_matmul(type, isa, T, reps);
}
