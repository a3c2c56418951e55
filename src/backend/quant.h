// Quantization type traits: one table row per tensor format, no switches spread over the code.
//
// For y = W·x llama.cpp converts the f32 activation row x to the weight's vec_dot_type (F16 for F16,
// BF16 for BF16, Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1 for Q4_1/Q5_1, Q8_K for K-quants, F32 for F32) and takes
// integer/half dot products. frugal does the same, bit-exact with the scalar reference in backend/ref.
//
// Each row exists per ISA: quant_traits(type, Isa::kScalar) is the reference (quant_ref.cpp); the AVX2
// and AVX-512 rows (quant_avx2.cpp, quant_avx512.cpp) must give the same quantized bytes and the same
// dot products up to float summation order (the per-format error budget table is in backend/matmul_test.cpp).
// Functions missing for an ISA fall back to the scalar row.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/isa.h"
#include "tensor/dtype.h"

namespace frugal {

struct QuantTraits {
  DType type;
  DType vec_dot_type;  // format the activations are converted to
  // Dequantize n elements (n a multiple of the block size).
  void (*to_float)(const void* src, float* dst, int64_t n);
  // Quantize n elements with ggml's reference rounding (`quantize_row_*_ref`; for Q8_0/Q8_1/Q8_K the
  // activation quantizer). nullptr if the type cannot be produced.
  void (*from_float)(const float* src, void* dst, int64_t n);
  // s = dot(x, y) over n elements; x in `type`, y in `vec_dot_type`.
  void (*vec_dot)(int64_t n, float* s, const void* x, const void* y);
  // Optional tiled kernel: for rows r in [r0, r1) of W and activation columns t in [0, T):
  //   y[t * ldy + r] = dot(W row r, activation row t)
  // Must give exactly the same value as vec_dot for every (r, t) (batch invariance). nullptr -> loop
  // over vec_dot.
  void (*gemm)(int64_t n, const void* w, size_t w_row_bytes, int64_t r0, int64_t r1, const void* x,
               size_t x_row_bytes, int64_t T, float* y, int64_t ldy);
  // Optional repacked form of W, built once per weight (backend/matmul.cpp caches it): rows in groups
  // of kRepackRows, each group repack_group_bytes(n) bytes (64-byte aligned when the buffer is).
  // repack writes groups [g0, g1) of the N-row matrix w (rows past N padded with zeros); gemm_repacked
  // is `gemm` on the repacked matrix wp (same arguments, same bits for every (row, token)).
  // All three are nullptr when the ISA has no repacked kernel for the type.
  size_t (*repack_group_bytes)(int64_t n) = nullptr;
  void (*repack)(int64_t n, const void* w, size_t w_row_bytes, int64_t N, int64_t g0, int64_t g1,
                 void* dst) = nullptr;
  void (*gemm_repacked)(int64_t n, const void* wp, int64_t r0, int64_t r1, const void* x, size_t x_row_bytes,
                        int64_t T, float* y, int64_t ldy) = nullptr;
  int64_t repack_min_T = 2;  // token count from which gemm_repacked beats gemm (measured per format)
};

// Rows per group of a repacked weight matrix (QuantTraits::repack).
constexpr int64_t kRepackRows = 16;

// Traits of `type` for `isa` (falls back to the scalar row for missing entries). nullptr if the type
// is not implemented.
// `isa` must be supported by this CPU (isa_supported). Rows are built once and never change.
const QuantTraits* quant_traits(DType type, Isa isa);

// Quantizes n elements (a multiple of the block size) the way llama-quantize does without an
// importance matrix (ggml's quantize_row_*_ref). Same as the scalar from_float for every type except
// Q8_0, whose from_float is the activation quantizer (round half to even, id = 127/amax) while weights
// use ggml's reference (roundf, id = 1/d).
void quantize_row_weights(DType type, const float* src, void* dst, int64_t n);

// Whether quantize_row_weights_imatrix uses the importance for `type` (Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K,
// Q6_K; like llama.cpp, Q8_0 and float types ignore it).
bool quantize_uses_importance(DType type);
// Quantizes one whole row of n elements weighting each column's error by importance[k] >= 0 (an imatrix
// row: mean of x^2 of the activations that multiply column k), as llama-quantize does with --imatrix.
// importance == nullptr or a type that ignores it: exactly quantize_row_weights. n must be the full row
// (the legacy types use the row's mean square) and a multiple of the block size. Scalar, thread-safe.
void quantize_row_weights_imatrix(DType type, const float* src, void* dst, int64_t n, const float* importance);

}  // namespace frugal
