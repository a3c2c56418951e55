// N:M structured-sparse tensor types (frugal-only; layout in docs/SPARSITY.md).
//
// A sparse type stores a row of a base format (Q8_0, Q4_0 or F16) in which, in every group of M
// consecutive elements along the row, at most N are non-zero; only N values per group are stored, plus
// the group's keep pattern. Blocks cover 32 elements (one Q8_0 activation block); M divides 32, so
// groups never straddle blocks. A row of nb = n / 32 blocks is a sequence of GROUPS of 16 blocks (the
// last one has nb mod 16 when that is not 0), and each group is stored PLANAR (little-endian), so that a
// kernel reads the scales of 16 blocks, the patterns of 4 blocks and the kept values of 4 blocks with one
// load each, and a row is still one sequential stream (the group's planes lie within its few hundred
// bytes):
//   d plane     cnt x f16 d      (Q8_0 and Q4_0 bases; F16 has none)
//   mask plane  cnt x mask_bytes: the block's keep pattern
//   kept plane  cnt x kept bytes: Q8_0: K int8 codes; Q4_0: K/2 bytes, byte i = kept i | kept i+K/2 << 4;
//               F16: K f16 values
// with cnt the group's blocks, K = 32 N / M kept values per block, in element order. The keep pattern
// of a block is its 32-bit keep mask (bit j, LSB first = element j kept; every group of M bits has
// exactly N set), except for M = 4, where it is stored as a position code per group of 4, code g at bit
// code_bits x g of a little-endian word: 1:4 2 bits (the kept position; 2 bytes per block), 2:4 3 bits
// (0..5 = keep 01, 02, 12, 03, 13, 23, i.e. the nibbles 0x3 0x5 0x6 0x9 0xA 0xC; 3 bytes per block).
// sparse_mask() decodes either into the mask. A dropped element is exactly 0 (Q4_0: code 8). Group g
// starts at byte 16 g x block_bytes; row bytes = nb x block_bytes, as for a block format. A row of at
// most 16 blocks is one planar group. Expanding a row gives the dense base row whose kept codes are the
// stored ones and whose other codes are 0 (Q4_0: 8): the sparse row and its expansion compute identical
// dot products. Functions taking `n` work on whole rows.
//
// KEPT LANES (kept_lanes: 1:4 and 2:4 over Q8_0 and Q4_0): the kept plane of a FULL group (16 blocks) is
// stored in lanes of 4 values instead of block by block, so that one load gives 4 kept values of each
// of the 16 blocks and a kernel's 32-bit lane i holds block i (its integer sums need no cross-lane
// reduction): chunk c (c < K/4) holds kept values 4c..4c+3 of every block,
//   Q8_0: 64 bytes at 64 c, kept 4c + u of block i at byte 64 c + 4 i + u;
//   Q4_0: 32 bytes at 32 c, byte 32 c + 4 (i mod 8) + u = kept 4c + u of block i mod 8 (low nibble) |
//         kept 4c + u of block 8 + i mod 8 (high nibble).
// A last group of fewer than 16 blocks keeps the per-block order. sparse_block_kept() reads a block's
// kept values in the per-block form from either.
#pragma once

#include <array>
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
  size_t d_bytes;    // bytes per block in the d plane (2, or 0 for F16)
  size_t mask_bytes; // bytes per block in the mask plane: 4, or 2 (1:4) / 3 (2:4) for position codes
  int code_bits;     // bits per group of 4 of the position code (2 or 3), 0 when the plane holds masks
  size_t kept_bytes; // bytes per block in the kept plane
  size_t block_bytes;        // d_bytes + mask_bytes + kept_bytes
  bool kept_lanes;           // full groups store the kept plane in lanes of 4 values (above)
  size_t dense_block_bytes;  // bytes of 32 elements of `base`
};

// The three planes of one group of blocks.
struct SparsePlanes {
  const uint8_t* d;     // cnt * d_bytes
  const uint8_t* mask;  // cnt * mask_bytes
  const uint8_t* kept;  // cnt * kept_bytes
};

// Blocks per group of a sparse row.
constexpr int64_t kSparseGroupBlocks = 16;
inline int64_t sparse_group_count(int64_t nb) { return (nb + kSparseGroupBlocks - 1) / kSparseGroupBlocks; }

// Group g of a row of nb blocks starting at `row`: its planes, its first block and its block count.
struct SparseGroup {
  SparsePlanes p;
  int64_t b0;
  int cnt;
};
inline SparseGroup sparse_group(const SparseTypeInfo& f, const void* row, int64_t nb, int64_t g) {
  const int64_t b0 = g * kSparseGroupBlocks;
  const int cnt = (int)(nb - b0 < kSparseGroupBlocks ? nb - b0 : kSparseGroupBlocks);
  const auto* p = static_cast<const uint8_t*>(row) + (size_t)b0 * f.block_bytes;
  return SparseGroup{SparsePlanes{p, p + (size_t)cnt * f.d_bytes, p + (size_t)cnt * (f.d_bytes + f.mask_bytes)}, b0,
                     cnt};
}

// Whether group `grp` stores its kept plane in lanes (kept_lanes and a full group).
inline bool sparse_group_in_lanes(const SparseTypeInfo& f, const SparseGroup& grp) {
  return f.kept_lanes && grp.cnt == kSparseGroupBlocks;
}

// Block i's kept values in the per-block form (Q8_0: K bytes; Q4_0: K/2 bytes, byte t = kept t | kept
// t + K/2 << 4; F16: 2K bytes): a pointer into the group's kept plane, or `tmp` (at least 64 bytes)
// filled from a group stored in lanes.
const uint8_t* sparse_block_kept(const SparseTypeInfo& f, const SparseGroup& grp, int64_t i, uint8_t* tmp);

// The 2:4 position codes: code c keeps elements kSparsePairs24[c][0] < kSparsePairs24[c][1] of its group
// (ascending as nibbles: 0x3 0x5 0x6 0x9 0xA 0xC); codes 6 and 7 are malformed.
inline constexpr uint8_t kSparsePairs24[6][2] = {{0, 1}, {0, 2}, {1, 2}, {0, 3}, {1, 3}, {2, 3}};

// Keep masks of the position codes of 4 groups of 4 (12 bits of 2:4 codes, 8 of 1:4), 16 bits each; a
// 2:4 code 6 or 7 (malformed; validate_sparse_rows rejects it) decodes to an empty group.
extern const std::array<uint16_t, 4096> kSparseCodeMask24;
extern const std::array<uint16_t, 256> kSparseCodeMask14;

// The 32-bit keep mask of block i of a group's mask plane.
inline uint32_t sparse_mask(const SparseTypeInfo& f, const uint8_t* plane, int64_t i) {
  const uint8_t* p = plane + (size_t)i * f.mask_bytes;
  if (f.code_bits == 3) {
    const uint32_t c = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
    return kSparseCodeMask24[c & 0xFFF] | (uint32_t)kSparseCodeMask24[c >> 12] << 16;
  }
  if (f.code_bits == 2) return kSparseCodeMask14[p[0]] | (uint32_t)kSparseCodeMask14[p[1]] << 16;
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// Stores `mask` (exactly N of every M bits set; FRUGAL_CHECKed) as block i's keep pattern.
void sparse_set_mask(const SparseTypeInfo& f, uint8_t* plane, int64_t i, uint32_t mask);

// Type ids 200..226 (a block-interleaved layout), 230..256 (whole rows planar), 260..286 (1:4 and 2:4
// stored with 32-bit masks) and 290..306 (Q8_0 / Q4_0 kept planes block by block) were the layouts of
// earlier frugal builds; files with them are refused with a message saying to prune again (true for
// those ids).
bool is_retired_sparse_type_id(uint32_t id);

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

// Checks that every group of M mask bits of `rows` rows of n elements has exactly N bits set (and that
// every 2:4 position code is 0..5). Error names `what` (e.g. "model.gguf: tensor 'blk.0.ffn_up.weight'"), the row, the block and the group.
Status validate_sparse_rows(const SparseTypeInfo& f, const void* data, int64_t n, int64_t rows,
                            const std::string& what);

// Scalar helpers (reference; SIMD versions in backend/sparse_*.cpp).
// Expands one sparse row of n elements into the dense base row (n / 32 blocks of Q8_0 34 B, Q4_0 18 B,
// F16 64 B).
void sparse_expand_row(const SparseTypeInfo& f, const void* src, void* dst, int64_t n);
// Compresses one dense base row with one keep mask per block (each group exactly N bits). Dropped
// elements must already be 0 (Q4_0 code 8) in `dense`; FRUGAL_CHECKed.
void sparse_compress_row(const SparseTypeInfo& f, const void* dense, const uint32_t* masks, void* dst, int64_t n);

}  // namespace frugal
