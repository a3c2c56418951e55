// DType: the ggml tensor type ids as stored in GGUF files, with block geometry.
//
// Every id a GGUF file may carry is listed (so `inspect` can name it); `implemented` says whether
// frugal's backends can compute with it. A tensor of ne0 elements per row occupies
// (ne0 / block_size) * block_bytes bytes per row; ne0 must be a multiple of block_size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace frugal {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  // frugal-only N:M structured-sparse types (docs/SPARSITY.md), ids far above ggml's so other engines
  // refuse the file. Rows of 32-element blocks in planar groups of 16 blocks; 320 + p: Q8_0 base,
  // 330 + p: Q4_0 base, 310 + p: F16 base, p = pattern index 0..6 for 1:4, 2:4, 1:8, 2:8, 4:8, 4:16, 8:16
  // (tensor/sparse_nm.h). (200..226, 230..256, 260..286 and 290..306 were earlier layouts; such files are
  // refused.)
  Q8_0_S1_4 = 320,
  Q8_0_S2_4 = 321,
  Q8_0_S1_8 = 322,
  Q8_0_S2_8 = 323,
  Q8_0_S4_8 = 324,
  Q8_0_S4_16 = 325,
  Q8_0_S8_16 = 326,
  Q4_0_S1_4 = 330,
  Q4_0_S2_4 = 331,
  Q4_0_S1_8 = 332,
  Q4_0_S2_8 = 333,
  Q4_0_S4_8 = 334,
  Q4_0_S4_16 = 335,
  Q4_0_S8_16 = 336,
  F16_S1_4 = 310,
  F16_S2_4 = 311,
  F16_S1_8 = 312,
  F16_S2_8 = 313,
  F16_S4_8 = 314,
  F16_S4_16 = 315,
  F16_S8_16 = 316,
};

struct DTypeInfo {
  DType type;
  const char* name;
  int64_t block_size;   // elements per block
  int64_t block_bytes;  // bytes per block
  bool implemented;     // frugal can load and compute with it
};

// Info for a raw id from a file; nullptr if the id is unknown (removed or newer than frugal).
const DTypeInfo* dtype_info(uint32_t id);
// Info for a known type (checks).
const DTypeInfo& dtype_info(DType t);
inline const char* dtype_name(DType t) { return dtype_info(t).name; }
// Parses a name such as "Q4_K" or "f16" (case-insensitive); false if unknown.
bool dtype_from_name(const std::string& name, DType* out);

inline int64_t dtype_block_size(DType t) { return dtype_info(t).block_size; }
inline int64_t dtype_block_bytes(DType t) { return dtype_info(t).block_bytes; }
// Bytes of a row of n elements (n must be a multiple of the block size).
inline size_t dtype_row_bytes(DType t, int64_t n) {
  const DTypeInfo& i = dtype_info(t);
  return (size_t)(n / i.block_size) * (size_t)i.block_bytes;
}

}  // namespace frugal
