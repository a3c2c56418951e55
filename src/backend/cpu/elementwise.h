// SIMD twins of the scalar RMSNorm and SiLU row kernels (backend/ops_scalar.h): the same arithmetic
// step by step (16 double lanes and a tree for the sum of squares; the clamped polynomial e^x), so they
// return the same bits as ops::rms_norm_row / ops::silu_mul (elementwise_test.cpp). Call the _avx512
// functions only when isa_supported(Isa::kAvx512), the _avx2 ones when isa_supported(Isa::kAvx2).
#pragma once

#include <cstdint>

namespace frugal::ops {

void rms_norm_row_avx512(const float* x, const float* w, int64_t D, float eps, float* y);
void silu_mul_avx512(float* g, const float* u, int64_t n);
void rms_norm_row_avx2(const float* x, const float* w, int64_t D, float eps, float* y);
void silu_mul_avx2(float* g, const float* u, int64_t n);

}  // namespace frugal::ops
