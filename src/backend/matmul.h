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

// Buffers reused between matmul_cpu calls (grow-only, 64-byte aligned). One per caller thread; not
// thread-safe. Holds the converted activations.
class MatmulScratch {
 public:
  uint8_t* activations(size_t bytes);
  size_t capacity() const { return capacity_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> buf_;
  size_t capacity_ = 0;
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
