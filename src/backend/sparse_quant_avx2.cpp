// AVX2/BMI2 expansion of N:M sparse blocks into dense base blocks (scalar twin: sparse_expand_row in
// tensor/sparse_nm.cpp): pdep scatters 8 kept bytes at a time to the mask's positions. F16 bases use
// the scalar expansion.
#include <immintrin.h>

#include <bit>
#include <cstring>

#include "backend/sparse_quant.h"

namespace frugal {

namespace {

constexpr uint64_t kByteLsb = 0x0101010101010101ull;

// 32 byte codes from the K kept ones in `kept` (zero padded to 32): element j gets kept[rank of j]
// where mask bit j is set, else `fill`.
inline void scatter32(const uint8_t* kept, uint32_t mask, uint8_t fill, uint8_t* out) {
  int k = 0;
  for (int c = 0; c < 4; ++c) {
    const uint32_t m8 = mask >> (8 * c) & 0xFF;
    const uint64_t bytes = _pdep_u64(m8, kByteLsb) * 0xFF;
    uint64_t src;
    std::memcpy(&src, kept + k, 8);
    const uint64_t v = _pdep_u64(src, bytes) | (fill * kByteLsb & ~bytes);
    std::memcpy(out + 8 * c, &v, 8);
    k += std::popcount(m8);
  }
}

void expand(const SparseTypeInfo& f, const void* src, void* dst, int64_t n) {
  if (f.base == DType::F16) {
    sparse_expand_row(f, src, dst, n);
    return;
  }
  const int64_t nb = n / kSparseBlock;
  auto* d = static_cast<uint8_t*>(dst);
  const bool q8 = f.base == DType::Q8_0;
  for (int64_t b = 0; b < nb; ++b, d += f.dense_block_bytes) {
    const SparseGroup grp = sparse_group(f, src, nb, b / kSparseGroupBlocks);
    const int64_t i = b - grp.b0;
    const uint32_t mask = sparse_mask(f, grp.p.mask, i);
    uint8_t tmp[64];
    const uint8_t* kv = sparse_block_kept(f, grp, i, tmp);
    alignas(32) uint8_t kept[40] = {0};
    alignas(32) uint8_t codes[32];
    std::memcpy(d, grp.p.d + 2 * i, 2);
    if (q8) {
      std::memcpy(kept, kv, (size_t)f.kept);
      scatter32(kept, mask, 0, d + 2);
      continue;
    }
    const int half = f.kept / 2;
    for (int i = 0; i < half; ++i) {
      kept[i] = kv[i] & 0x0F;
      kept[i + half] = kv[i] >> 4;
    }
    scatter32(kept, mask, 8, codes);
    const __m128i lo = _mm_load_si128((const __m128i*)codes), hi = _mm_load_si128((const __m128i*)(codes + 16));
    _mm_storeu_si128((__m128i*)(d + 2), _mm_or_si128(lo, _mm_slli_epi16(hi, 4)));
  }
}

}  // namespace

SparseExpandFn sparse_expander_avx2() { return &expand; }

}  // namespace frugal
