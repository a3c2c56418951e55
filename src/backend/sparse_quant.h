// N:M sparse weight types in the quant traits table (internal to backend/; format: tensor/sparse_nm.h,
// docs/SPARSITY.md).
//
// Every kernel gives the same ISA's dense kernel's values on the expanded weights, so for every ISA
//   sparse vec_dot / gemm  ==  dense vec_dot / gemm of the expanded weights, bit for bit,
// and batch invariance is inherited from the dense kernels. Decode (T < 8) reads the sparse rows
// (register walks below); otherwise the kept values are expanded into dense base blocks chunk by chunk
// in a small per-thread buffer, or, for T >= the repacked threshold on ISAs where the base format has
// a repacked kernel, the whole weight is expanded once into the base's repacked form and cached beside
// the sparse weights like a dense weight's (MatmulScratch; the dense copy's memory, --repack-mem).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/quant.h"
#include "tensor/sparse_nm.h"

namespace frugal {

// Expands one sparse row of n elements of format f into the dense base row (same contract as
// sparse_expand_row in tensor/sparse_nm.h, which is the scalar version).
using SparseExpandFn = void (*)(const SparseTypeInfo& f, const void* src, void* dst, int64_t n);

// SIMD expanders; nullptr if this CPU lacks the instructions they need (AVX-512: VBMI2 vpexpandb/w;
// AVX2: BMI2 pdep). Only call for an ISA that isa_supported() says this CPU runs.
SparseExpandFn sparse_expander_avx512();
SparseExpandFn sparse_expander_avx2();

// Decode kernel (T < kSparseWalkMaxT columns) that expands in registers instead of through a buffer;
// gives exactly the dense kernels' values (see sparse_walk_avx512.cpp). y[t * ldy + r] for r in [r0, r1).
using SparseWalkFn = void (*)(const SparseTypeInfo& f, int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0,
                              int64_t r1, const uint8_t* x, size_t x_row_bytes, int64_t T, float* y, int64_t ldy);
constexpr int64_t kSparseWalkMaxT = 8;
// nullptr if the CPU lacks VBMI2 or the format has no walk.
SparseWalkFn sparse_walk_avx512(const SparseTypeInfo& f);
// The F16-base walk (sparse_f16_avx512.cpp): any pattern over F16; nullptr for other bases or without VBMI2.
SparseWalkFn sparse_f16_walk_avx512(const SparseTypeInfo& f);
// The activation-gathering decode kernel (sparse_gather_avx512.cpp): 1:4 and 2:4 over Q8_0 and Q4_0 (the
// kept_lanes types); same values. nullptr for other formats or without AVX512_VBMI and VBMI2.
SparseWalkFn sparse_gather_walk_avx512(const SparseTypeInfo& f);

// The AVX2 decode kernel (sparse_walk_avx2.cpp): 1:4 and 2:4 over Q8_0 and Q4_0, kept values placed by
// vpshufb; the dense AVX2 kernels' values. nullptr for other formats.
SparseWalkFn sparse_walk_avx2(const SparseTypeInfo& f);
// The same walk with the AVX-512 dense kernels' float contract (quant_legacy_avx512.cpp), for AVX-512
// CPUs without VBMI (Skylake-X, Cascade Lake); uses only AVX2 + FMA instructions.
SparseWalkFn sparse_walk_avx512_novbmi(const SparseTypeInfo& f);

// Tests and benchmarks: false makes every ISA use the expand-to-buffer path (same values). Not
// thread-safe; set before any kernel runs.
void sparse_set_register_walk(bool enabled);

// The traits rows of every sparse type for `isa` (appended to the table by quant_table.cpp); `dense` is
// the table's rows of the dense formats for `isa` (the bases' repacked kernels come from there).
std::vector<QuantTraits> sparse_quant_rows(Isa isa, const std::vector<QuantTraits>& dense);

}  // namespace frugal
