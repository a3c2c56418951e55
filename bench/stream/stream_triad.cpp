// frugal_stream: a STREAM-style memory bandwidth probe (triad a[i] = b[i] + s*c[i], plus a read-only sweep).
//
// Batch-1 decode of a dense model streams every weight once per token, so its physical ceiling is
// (weight bytes per token) / (memory bandwidth). This program measures that bandwidth the way STREAM does:
// three double arrays each far larger than the last-level cache (on transparent huge pages), every thread
// first-touches the slice it will later sweep (so pages land on its NUMA node), best of N repetitions, and triad traffic counted as
// 3 x 8 bytes per element (STREAM's convention; the write-allocate read of a[] is not counted).
// Because decode only reads weights, a read-only sweep (XOR over b[], read as 4 concurrent streams) is
// reported too; it counts 8 bytes per element.
//
// Usage: frugal_stream [--threads 1,2] [--reps 10] [--mib-per-array N] [--json]
//   default array size: max(512 MiB, 4 x LLC size reported by sysconf), capped so the three arrays use at
//   most 60% of MemAvailable. Output is human-readable, or one JSON object with --json.
//
// This is a benchmark: it prints figures and never fails on a time.

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  std::vector<int> threads = {1, 2};
  int reps = 10;
  size_t mib_per_array = 0;  // 0 = automatic
  bool json = false;
};

struct Result {
  int threads = 0;
  double triad_gbs = 0;
  double read_gbs = 0;
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "frugal_stream: %s\n", msg.c_str());
  std::fprintf(stderr, "usage: frugal_stream [--threads 1,2] [--reps N] [--mib-per-array N] [--json]\n");
  std::exit(2);
}

long parse_positive(const std::string& s, const char* what) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (end == s.c_str() || *end != '\0' || v <= 0) {
    usage_error(std::string(what) + ": not a positive integer: '" + s + "'");
  }
  return v;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--threads") {
      o.threads.clear();
      std::string list = value();
      size_t pos = 0;
      while (pos <= list.size()) {
        size_t comma = list.find(',', pos);
        if (comma == std::string::npos) comma = list.size();
        o.threads.push_back(static_cast<int>(parse_positive(list.substr(pos, comma - pos), "--threads")));
        pos = comma + 1;
      }
    } else if (a == "--reps") {
      o.reps = static_cast<int>(parse_positive(value(), "--reps"));
    } else if (a == "--mib-per-array") {
      o.mib_per_array = static_cast<size_t>(parse_positive(value(), "--mib-per-array"));
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "-h" || a == "--help") {
      usage_error("help requested");
    } else {
      usage_error("unknown argument '" + a + "'");
    }
  }
  return o;
}

size_t mem_available_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return 0;
}

size_t llc_bytes() {
  long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (l3 > 0) return static_cast<size_t>(l3);
  long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  return l2 > 0 ? static_cast<size_t>(l2) : 0;
}

size_t choose_elements(const Options& o, size_t llc) {
  constexpr size_t kMiB = size_t{1} << 20;
  size_t bytes = o.mib_per_array ? o.mib_per_array * kMiB : std::max<size_t>(512 * kMiB, 4 * llc);
  if (!o.mib_per_array) {
    size_t avail = mem_available_bytes();
    if (avail > 0) bytes = std::min(bytes, avail * 6 / 10 / 3);
  }
  return bytes / sizeof(double);
}

// Each worker owns the contiguous slice [begin, end) of every array, for first touch and every sweep.
struct Slice {
  size_t begin, end;
};

Slice slice_of(size_t n, int nthreads, int t) {
  size_t per = n / static_cast<size_t>(nthreads);
  size_t begin = per * static_cast<size_t>(t);
  size_t end = (t == nthreads - 1) ? n : begin + per;
  return {begin, end};
}

// Kept out of line so the compiler cannot fuse or drop repetitions.
__attribute__((noinline)) void triad(double* __restrict a, const double* __restrict b,
                                     const double* __restrict c, double s, Slice sl) {
  for (size_t i = sl.begin; i < sl.end; ++i) a[i] = b[i] + s * c[i];
}

// XOR of the 64-bit patterns: integer ops are associative, so the compiler vectorizes this freely and the
// loop stays memory-bound (a floating-point sum would be a latency-bound dependency chain without
// -ffast-math). memcpy is the aliasing-safe way to read a double's bits and compiles to a plain load.
// The slice is read as 4 interleaved sequential streams (its four quarters in lockstep), the access
// pattern of a matrix-vector product that walks several weight rows at once: on some CPUs (measured on a
// Zen 5 VM: ~24 vs ~36 GB/s on one core) a single sequential stream leaves the hardware prefetcher short
// of memory-level parallelism and understates what decode can read.
__attribute__((noinline)) uint64_t read_xor(const double* __restrict b, Slice sl) {
  constexpr size_t kStreams = 4;
  const size_t quarter = (sl.end - sl.begin) / kStreams;
  const double* base = b + sl.begin;
  uint64_t acc[kStreams] = {0, 0, 0, 0};
  for (size_t i = 0; i < quarter; ++i) {
    for (size_t k = 0; k < kStreams; ++k) {
      uint64_t bits;
      std::memcpy(&bits, &base[k * quarter + i], sizeof bits);
      acc[k] ^= bits;
    }
  }
  for (size_t i = sl.begin + kStreams * quarter; i < sl.end; ++i) {  // remainder
    uint64_t bits;
    std::memcpy(&bits, &b[i], sizeof bits);
    acc[0] ^= bits;
  }
  return acc[0] ^ acc[1] ^ acc[2] ^ acc[3];
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Runs `reps` timed sweeps of `kernel` on `nthreads` persistent workers; returns the best wall time.
// Workers meet at a barrier before and after each sweep; the main thread (worker 0) reads the clock.
double best_time(int nthreads, int reps, const std::function<void(int)>& kernel) {
  std::barrier sync(nthreads);
  double best = 1e30;
  auto body = [&](int t) {
    for (int r = 0; r < reps; ++r) {
      sync.arrive_and_wait();
      double t0 = (t == 0) ? now() : 0;
      kernel(t);
      sync.arrive_and_wait();
      if (t == 0) best = std::min(best, now() - t0);
    }
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < nthreads; ++t) workers.emplace_back(body, t);
  body(0);
  for (auto& w : workers) w.join();
  return best;
}

// An untouched array of n doubles on 2 MiB boundaries, marked for transparent huge pages (as frugal's
// weight and KV buffers are), so the probe measures DRAM rather than TLB misses.
struct FreeDeleter {
  void operator()(double* p) const { std::free(p); }
};
std::unique_ptr<double[], FreeDeleter> huge_array(size_t n) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t bytes = (n * sizeof(double) + kHuge - 1) / kHuge * kHuge;
  auto* p = static_cast<double*>(std::aligned_alloc(kHuge, bytes));
  if (!p) {
    std::fprintf(stderr, "frugal_stream: cannot allocate %zu bytes\n", bytes);
    std::exit(1);
  }
  madvise(p, bytes, MADV_HUGEPAGE);  // advisory: ignored where THP is off
  return std::unique_ptr<double[], FreeDeleter>(p);
}

Result measure(int nthreads, int reps, size_t n) {
  // Fresh, untouched allocations for every thread count, so first touch matches the slicing.
  auto a = huge_array(n), b = huge_array(n), c = huge_array(n);
  double* pa = a.get();
  double* pb = b.get();
  double* pc = c.get();
  best_time(nthreads, 1, [&](int t) {
    Slice sl = slice_of(n, nthreads, t);
    for (size_t i = sl.begin; i < sl.end; ++i) {
      pa[i] = 0.0;
      pb[i] = 1.0 + static_cast<double>(i % 7);
      pc[i] = 2.0;
    }
  });
  const double s = 3.0;
  double t_triad = best_time(nthreads, reps, [&](int t) { triad(pa, pb, pc, s, slice_of(n, nthreads, t)); });
  std::vector<uint64_t> sums(static_cast<size_t>(nthreads));
  double t_read = best_time(nthreads, reps, [&](int t) { sums[t] = read_xor(pb, slice_of(n, nthreads, t)); });
  // Check the arrays so the sweeps cannot be optimized away and a broken kernel is noticed.
  double expect_a = pb[n / 2] + s * pc[n / 2];
  if (pa[n / 2] != expect_a) {
    std::fprintf(stderr, "frugal_stream: triad result wrong at %zu: %g != %g\n", n / 2, pa[n / 2], expect_a);
    std::exit(1);
  }
  uint64_t folded = 0;
  for (uint64_t v : sums) folded ^= v;
  volatile uint64_t sink = folded;  // keeps the read sweeps observable
  (void)sink;
  Result r;
  r.threads = nthreads;
  r.triad_gbs = 3.0 * sizeof(double) * static_cast<double>(n) / t_triad / 1e9;
  r.read_gbs = 1.0 * sizeof(double) * static_cast<double>(n) / t_read / 1e9;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  size_t llc = llc_bytes();
  size_t n = choose_elements(o, llc);
  if (n < 1024) usage_error("arrays too small");
  std::vector<Result> results;
  for (int t : o.threads) results.push_back(measure(t, o.reps, n));

  double array_mib = static_cast<double>(n * sizeof(double)) / (1 << 20);
  if (o.json) {
    std::printf("{\"llc_bytes\": %zu, \"array_bytes\": %zu, \"reps\": %d, \"results\": [", llc,
                n * sizeof(double), o.reps);
    for (size_t i = 0; i < results.size(); ++i) {
      std::printf("%s{\"threads\": %d, \"triad_gbs\": %.3f, \"read_gbs\": %.3f}", i ? ", " : "",
                  results[i].threads, results[i].triad_gbs, results[i].read_gbs);
    }
    std::printf("]}\n");
  } else {
    std::printf("LLC (sysconf): %.1f MiB; arrays: 3 x %.0f MiB of double; best of %d\n",
                static_cast<double>(llc) / (1 << 20), array_mib, o.reps);
    std::printf("%8s %14s %14s\n", "threads", "triad GB/s", "read GB/s");
    for (const Result& r : results) std::printf("%8d %14.2f %14.2f\n", r.threads, r.triad_gbs, r.read_gbs);
  }
  return 0;
}
