// Matrix multiplication y[T, N] = x[T, K] · W^T as llama.cpp's CPU backend computes it: the f32
// activation rows are first converted to W's vec_dot_type (quant.h), then every (row, token) pair is
// an integer/half dot product with per-block float scales.
//
// Determinism (a design rule): y[t, r] depends only on W row r and x row t — never on T, on the other
// rows of x, on the thread count or on how the work was split. Every ISA's gemm tile gives exactly the
// value of that ISA's vec_dot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "backend/backend.h"
#include "backend/isa.h"

namespace frugal {

class ThreadPool;

// Scalar oracle: x rows converted with the scalar from_float, then scalar vec_dot per (row, token).
// x [T, K] f32, y [T, N] f32. Single-threaded; for tests and the reference backend.
void matmul_ref(const WeightView& w, const float* x, int64_t T, float* y);

struct QuantTraits;

// Buffers reused between matmul_cpu calls (grow-only, 64-byte aligned). One per caller thread; not
// thread-safe. Holds the converted activations and the cache of repacked weights.
//
// Repacked weights (QuantTraits::repack; on AVX-512: Q4_0, Q8_0, IQ4_NL in their own size, Q5_0 1.5x, Q4_K,
// Q5_K, Q6_K about 2.2x their size): built in parallel on a weight's first matmul with T >=
// repack_min_T (decode with T = 1 reads the raw rows) into huge-page memory and kept until the scratch
// dies, keyed by the
// weight's data pointer and checked against its type, shape and a fingerprint of sampled bytes. Contract: weights seen by this scratch are
// not modified in place while it lives (a new weight at a recycled address is recognized by shape or
// fingerprint). The results do not depend on whether a weight is repacked (same bits).
class MatmulScratch {
 public:
  MatmulScratch();
  ~MatmulScratch();
  MatmulScratch(const MatmulScratch&) = delete;
  MatmulScratch& operator=(const MatmulScratch&) = delete;

  uint8_t* activations(size_t bytes);
  size_t capacity() const { return capacity_; }

  // Repacking on (default) or off; total repacked bytes kept at most `limit` (default 8 GiB; weights
  // past it run unrepacked).
  void set_repack(bool on, size_t limit = size_t(8) << 30) {
    repack_on_ = on;
    repack_limit_ = limit;
  }
  size_t repacked_bytes() const { return repacked_bytes_; }
  // The repacked form of w (t = w's traits for the ISA in use), built now if needed; nullptr when the
  // type has no repacked kernel, repacking is off or the limit is reached.
  const uint8_t* repacked(const QuantTraits& t, const WeightView& w, ThreadPool* pool);

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  struct Cache;
  std::unique_ptr<uint8_t, Free> buf_;
  size_t capacity_ = 0;
  bool repack_on_ = true;
  size_t repack_limit_ = size_t(8) << 30, repacked_bytes_ = 0;
  std::unique_ptr<Cache> cache_;
};

// Optimized matmul with `isa` kernels (isa_supported(isa) must hold). x [T, K] f32, y [T, N] f32
// (y must not alias x). `pool` may be null (single thread). The activation conversion runs in parallel
// over rows; the output is split over weight rows into one contiguous range per thread, so each
// thread streams its own part of W once per call; T > 1 uses the ISA's gemm tiles when present.
// Bit-identical results for any thread count and any T (see the determinism rule above).
void matmul_cpu(ThreadPool* pool, Isa isa, const WeightView& w, const float* x, int64_t T, float* y,
                MatmulScratch& scratch);

// Several matmul_cpu calls in one: every job's activations are converted, then all jobs' weight rows are
// split into chunks (kRowAlign-aligned) handed out over the pool in one parallel_for. Each y equals what
// matmul_cpu gives for that job alone (same kernels per (row, token); the split does not change values).
void matmul_cpu_multi(ThreadPool* pool, Isa isa, const Backend::MatmulJob* jobs, int64_t n, MatmulScratch& scratch);

// out[T, K] = W rows ids[t], dequantized with the scalar to_float (exact ggml dequantization).
// ids must be in [0, N).
void get_rows(const WeightView& w, const int32_t* ids, int64_t T, float* out);

}  // namespace frugal
