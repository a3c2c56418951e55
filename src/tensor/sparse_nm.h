// N:M structured-sparse tensor types (frugal-only; layout in docs/SPARSITY.md).
//
// A sparse type stores a row of a base format (Q8_0, Q4_0 or F16) in which, in every group of M
// consecutive elements along the row, at most N are non-zero; only N values per group are stored, plus
// a keep mask. Blocks cover 32 elements (one Q8_0 activation block); M divides 32, so groups never
// straddle blocks. Per block (little-endian):
//   Q8_0 base: f16 d | u32 mask | K int8 kept values                     (6 + K bytes)
//   Q4_0 base: f16 d | u32 mask | K/2 bytes, byte i = kept i | kept i+K/2 << 4 (6 + K/2 bytes)
//   F16  base:         u32 mask | K f16 kept values                      (4 + 2K bytes)
// with K = 32 N / M kept values per block, in element order; mask bit j (LSB first) = element j is
// kept; every group of M mask bits has exactly N bits set. A dropped element is exactly 0 (Q4_0: code
// 8). Expanding a block gives the dense base block whose kept codes are the stored ones and whose other
// codes are 0 (Q4_0: 8): the sparse tensor and its expansion compute identical dot products.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"
#include "tensor/dtype.h"

namespace frugal {

constexpr int64_t kSparseBlock = 32;  // elements per sparse block

struct SparseTypeInfo {
  DType type;
  DType base;        // Q8_0, Q4_0 or F16
  int n, m;          // keep n of every m
  int kept;          // K = 32 n / m values per block
  size_t head_bytes; // bytes before the kept values (d and mask)
  size_t block_bytes;
  size_t dense_block_bytes;  // bytes of 32 elements of `base`
};

// All sparse types, in id order (sparse_type_at(i), i < sparse_type_count()).
int sparse_type_count();
const SparseTypeInfo& sparse_type_at(int i);
// nullptr if `t` is not a sparse type.
const SparseTypeInfo* sparse_type_info(DType t);
inline bool is_sparse_type(DType t) { return sparse_type_info(t) != nullptr; }
// The sparse type for base Q8_0/Q4_0/F16 and pattern n:m; false if there is none.
bool sparse_type_for(DType base, int n, int m, DType* out);
// Parses "2:4" into n, m; false if malformed or not one of the supported patterns (any base).
bool parse_sparse_pattern(const std::string& s, int* n, int* m);
// Supported patterns, e.g. "1:4, 2:4, 1:8, 2:8, 4:8, 4:16, 8:16".
std::string sparse_patterns_string();

// Checks that every group of M mask bits in `nblocks` blocks has exactly N bits set. Error names
// `what` (e.g. "model.gguf: tensor 'blk.0.ffn_up.weight'"), the block and the group.
Status validate_sparse_blocks(const SparseTypeInfo& f, const void* data, int64_t nblocks, const std::string& what);

// Scalar helpers (reference; SIMD versions in backend/sparse_*.cpp).
// Expands `nblocks` sparse blocks into `nblocks` dense base blocks (Q8_0 34 B, Q4_0 18 B, F16 64 B).
void sparse_expand_blocks(const SparseTypeInfo& f, const void* src, void* dst, int64_t nblocks);
// Compresses dense base blocks with one keep mask per block (each group exactly N bits). Dropped
// elements must already be 0 (Q4_0 code 8) in `dense`; FRUGAL_CHECKed.
void sparse_compress_blocks(const SparseTypeInfo& f, const void* dense, const uint32_t* masks, void* dst,
                            int64_t nblocks);

}  // namespace frugal
