// SIMD kernel entry points per ISA (internal to backend/), wired into the traits table by
// quant_avx2.cpp / quant_avx512.cpp. Signatures are QuantTraits' (quant.h); each gemm_* gives for every
// (row, token) exactly the value of the same ISA's vec_dot_* (quant_gemm.h explains how).
// Scalar twins: backend/quant_ref*.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

namespace frugal {

struct QuantTraits;

#define FRUGAL_KERNEL_PAIR(name)                                                                            \
  void vec_dot_##name(int64_t n, float* s, const void* x, const void* y);                                   \
  void gemm_##name(int64_t n, const void* w, size_t w_row_bytes, int64_t r0, int64_t r1, const void* x,     \
                   size_t x_row_bytes, int64_t T, float* y, int64_t ldy);

#define FRUGAL_KERNEL_SET                                                                                   \
  FRUGAL_KERNEL_PAIR(f32)                                                                                   \
  FRUGAL_KERNEL_PAIR(f16)                                                                                   \
  FRUGAL_KERNEL_PAIR(bf16)                                                                                  \
  FRUGAL_KERNEL_PAIR(q4_0)                                                                                  \
  FRUGAL_KERNEL_PAIR(q4_1)                                                                                  \
  FRUGAL_KERNEL_PAIR(q5_0)                                                                                  \
  FRUGAL_KERNEL_PAIR(q5_1)                                                                                  \
  FRUGAL_KERNEL_PAIR(q8_0)                                                                                  \
  FRUGAL_KERNEL_PAIR(q4_K)                                                                                  \
  FRUGAL_KERNEL_PAIR(q5_K)                                                                                  \
  FRUGAL_KERNEL_PAIR(q6_K)                                                                                  \
  FRUGAL_KERNEL_PAIR(iq4_nl)                                                                                \
  void from_float_f16(const float* src, void* dst, int64_t n);                                              \
  void from_float_bf16(const float* src, void* dst, int64_t n);                                             \
  void from_float_q8_0(const float* src, void* dst, int64_t n);                                             \
  void from_float_q8_1(const float* src, void* dst, int64_t n);                                             \
  void from_float_q8_K(const float* src, void* dst, int64_t n);

namespace avx2 {
FRUGAL_KERNEL_SET
}  // namespace avx2

namespace avx512 {
FRUGAL_KERNEL_SET
// BF16 with AVX512_BF16 (vdpbf16ps); only when cpu_has_avx512_bf16().
FRUGAL_KERNEL_PAIR(bf16_dp)
// Sets repack_group_bytes / repack / gemm_repacked of `row` where a repacked kernel exists
// (quant_repack_avx512.cpp).
void fill_repacked(QuantTraits* row);
void fill_repacked_kquant(QuantTraits* row);  // Q4_K, Q5_K, Q6_K (quant_kquants_avx512.cpp)
}  // namespace avx512

#undef FRUGAL_KERNEL_SET
#undef FRUGAL_KERNEL_PAIR

}  // namespace frugal
