// N:M sparse weight types in the quant traits table (internal to backend/; format: tensor/sparse_nm.h,
// docs/SPARSITY.md).
//
// Every kernel expands the kept values into dense base blocks (Q8_0 / Q4_0 / F16) in a small per-thread
// buffer and runs the same ISA's dense kernel on them, so for every ISA
//   sparse vec_dot / gemm  ==  dense vec_dot / gemm of the expanded weights, bit for bit,
// and batch invariance is inherited from the dense kernels. Memory traffic is the sparse bytes: the
// expansion happens chunk by chunk (a few rows, L1/L2-resident), never for a whole tensor.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/quant.h"
#include "tensor/sparse_nm.h"

namespace frugal {

// Expands nblocks sparse blocks of format f into dense base blocks (same contract as
// sparse_expand_blocks in tensor/sparse_nm.h, which is the scalar version).
using SparseExpandFn = void (*)(const SparseTypeInfo& f, const void* src, void* dst, int64_t nblocks);

// SIMD expanders; nullptr if this CPU lacks the instructions they need (AVX-512: VBMI2 vpexpandb/w;
// AVX2: BMI2 pdep). Only call for an ISA that isa_supported() says this CPU runs.
SparseExpandFn sparse_expander_avx512();
SparseExpandFn sparse_expander_avx2();

// The traits rows of every sparse type for `isa` (appended to the table by quant_table.cpp).
std::vector<QuantTraits> sparse_quant_rows(Isa isa);

}  // namespace frugal
