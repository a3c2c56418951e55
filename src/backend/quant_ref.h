// Scalar reference kernels for every tensor format (internal to backend/; the public entry point is
// quant_traits(type, Isa::kScalar)). Arithmetic follows llama.cpp's generic C code (ggml-quants.c,
// ggml-cpu/quants.c, ggml_vec_dot_f16/bf16/f32) with one deliberate difference: the activation
// quantizers for Q8_0/Q8_1 round half to even with id = 127/amax, as llama.cpp's x86 SIMD path does
// (the golden logits were computed on AVX-512), so every frugal ISA produces identical activation bytes.
//
// Signatures match QuantTraits: to_float(src, dst, n), from_float(src, dst, n), vec_dot(n, s, x, y);
// n is a multiple of the block size. Pointers need no alignment.
#pragma once

#include <cstdint>

namespace frugal::qref {

// ---- float formats (quant_ref.cpp)
void to_float_f32(const void* src, float* dst, int64_t n);
void to_float_f16(const void* src, float* dst, int64_t n);
void to_float_bf16(const void* src, float* dst, int64_t n);
void from_float_f32(const float* src, void* dst, int64_t n);
void from_float_f16(const float* src, void* dst, int64_t n);
void from_float_bf16(const float* src, void* dst, int64_t n);
void vec_dot_f32(int64_t n, float* s, const void* x, const void* y);   // double accumulation
void vec_dot_f16(int64_t n, float* s, const void* x, const void* y);   // double accumulation
void vec_dot_bf16(int64_t n, float* s, const void* x, const void* y);  // double accumulation

// ---- legacy 32-element blocks (quant_ref.cpp)
void to_float_q4_0(const void* src, float* dst, int64_t n);
void to_float_q4_1(const void* src, float* dst, int64_t n);
void to_float_q5_0(const void* src, float* dst, int64_t n);
void to_float_q5_1(const void* src, float* dst, int64_t n);
void to_float_q8_0(const void* src, float* dst, int64_t n);
void to_float_q8_1(const void* src, float* dst, int64_t n);
void from_float_q4_0(const float* src, void* dst, int64_t n);  // quantize_row_q4_0_ref
void from_float_q4_1(const float* src, void* dst, int64_t n);  // quantize_row_q4_1_ref
void from_float_q5_0(const float* src, void* dst, int64_t n);  // quantize_row_q5_0_ref
void from_float_q5_1(const float* src, void* dst, int64_t n);  // quantize_row_q5_1_ref
void from_float_q8_0(const float* src, void* dst, int64_t n);  // activation quantizer (RNE)
void from_float_q8_1(const float* src, void* dst, int64_t n);  // activation quantizer (RNE)
void quantize_q8_0_weights(const float* src, void* dst, int64_t n);  // quantize_row_q8_0_ref (roundf)
void vec_dot_q4_0_q8_0(int64_t n, float* s, const void* x, const void* y);
void vec_dot_q4_1_q8_1(int64_t n, float* s, const void* x, const void* y);
void vec_dot_q5_0_q8_0(int64_t n, float* s, const void* x, const void* y);
void vec_dot_q5_1_q8_1(int64_t n, float* s, const void* x, const void* y);
void vec_dot_q8_0_q8_0(int64_t n, float* s, const void* x, const void* y);

// ---- K-quants (quant_ref_k.cpp: dequantization, Q8_K, dot products)
void to_float_q4_K(const void* src, float* dst, int64_t n);
void to_float_q5_K(const void* src, float* dst, int64_t n);
void to_float_q6_K(const void* src, float* dst, int64_t n);
void to_float_q8_K(const void* src, float* dst, int64_t n);
void from_float_q8_K(const float* src, void* dst, int64_t n);  // quantize_row_q8_K_ref (bsums zeroed for 0 blocks)
void vec_dot_q4_K_q8_K(int64_t n, float* s, const void* x, const void* y);
void vec_dot_q5_K_q8_K(int64_t n, float* s, const void* x, const void* y);
void vec_dot_q6_K_q8_K(int64_t n, float* s, const void* x, const void* y);

// ---- K-quant weight quantizers (quant_ref_kquantize.cpp; quantize_row_q*_K_ref, no imatrix)
void from_float_q4_K(const float* src, void* dst, int64_t n);
void from_float_q5_K(const float* src, void* dst, int64_t n);
void from_float_q6_K(const float* src, void* dst, int64_t n);

// ---- importance-weighted weight quantizers (llama-quantize with an imatrix). qw[n] holds one weight per
// column of the row (null: the unweighted quantizer above). quant_ref_kquantize.cpp, quant_ref_imatrix.cpp.
void quantize_q4_K_w(const float* src, void* dst, int64_t n, const float* qw);
void quantize_q5_K_w(const float* src, void* dst, int64_t n, const float* qw);
void quantize_q6_K_w(const float* src, void* dst, int64_t n, const float* qw);
// n is the whole row (sigma2 = mean of x^2 over the row, as llama.cpp).
void quantize_q4_0_w(const float* src, void* dst, int64_t n, const float* qw);
void quantize_q4_1_w(const float* src, void* dst, int64_t n, const float* qw);
void quantize_q5_0_w(const float* src, void* dst, int64_t n, const float* qw);
void quantize_q5_1_w(const float* src, void* dst, int64_t n, const float* qw);
// Fitting helpers (ggml's make_qkx2/3_quants, make_qx_quants, make_qp_quants semantics):
// codes L in [0, nmax] and (scale, -min) minimizing sum w*(scale*L - min - x)^2 over a grid of inverse scales.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min, uint8_t* Laux,
                    float rmin, float rdelta, int nstep);
// Symmetric codes L = l + nmax, l in [-nmax, nmax - 1], weights qw (x^2 when null); returns the scale.
float fit_symmetric(int n, int nmax, const float* x, int8_t* L, const float* qw);
// Non-negative x: codes L in [0, nmax] with weights w; grid search then coordinate descent; returns the scale.
float fit_positive(int n, int nmax, const float* x, uint8_t* L, const float* w);

// ---- IQ4_NL (quant_ref_iq.cpp): non-linear 4-bit codebook, 32-element blocks, Q8_0 activations
void to_float_iq4_nl(const void* src, float* dst, int64_t n);
void from_float_iq4_nl(const float* src, void* dst, int64_t n);  // weighted scale search (see the .cpp)
void vec_dot_iq4_nl_q8_0(int64_t n, float* s, const void* x, const void* y);

}  // namespace frugal::qref
