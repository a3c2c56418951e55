// Repacked legacy weights (Q4_0, Q5_0, Q8_0, IQ4_NL) x Q8_0 activations on AVX-512 VNNI: the weight
// matrix is rewritten once (QuantTraits::repack, cached by backend/matmul.cpp) into groups of 16 rows
// so that the lane = row kernel of quant_legacy_avx512.cpp needs no per-call repacking: one vpdpbusd
// does 16 rows x 4 products at every T, from T = 1 (decode) to prefill. Scalar twins: quant_ref.cpp,
// quant_ref_iq.cpp.
//
// Arithmetic: exactly quant_legacy_avx512.cpp's contract (exact int32 block sums with the offset
// removed through the activation sum, s_b = f32(dw_b) * f32(dx_b), four fma chains by block mod 4,
// (a0 + a2) + (a1 + a3)), so every (row, token) equals vec_dot_q*_q8_0 bit for bit.
//
// Group layout (16 rows, nb blocks of 32; every part 64-byte aligned when the group is):
//   codes  nb x kCodeBytes   Q8_0, Q5_0: 8 registers, register q lane j = codes 4q..4q+3 of row j
//                            (Q8_0 xor 0x80)
//                            4-bit: 4 registers, register h byte 4j+i = code 8h+i | code 8h+4+i << 4
//   masks  nb x 64           formats with kHigh only (none at present): 8 x 64-bit, bit 4j+i of mask q =
//                            high bit of code 4q+i, row j
//   scales nb x 32           16 x fp16 d (rows past N: 0); then padding to a multiple of 64 bytes
// Same bytes as the original rows for Q4_0, Q8_0 and IQ4_NL; 1.5x for Q5_0.
// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsic headers (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "backend/quant.h"
#include "backend/quant_avx512_util.h"
#include "backend/quant_blocks.h"  // kIQ4NLValues only
#include "backend/quant_gemm.h"
#include "backend/quant_kernels.h"

namespace frugal::avx512 {
namespace {

constexpr int kG = (int)kRepackRows;  // rows per group (= lanes)

// ---- formats: unsigned code e (0..31) of a block, and how a packed block turns into 8 registers

struct RQ8_0 {
  static constexpr int kBlockBytes = 34, kOffset = 128, kCodeBytes = 512;
  static constexpr bool kNibbles = false, kHigh = false, kTable = false;
  static uint8_t code(const uint8_t* blk, int e) { return (uint8_t)(blk[2 + e] ^ 0x80); }
};

struct RQ4_0 {
  static constexpr int kBlockBytes = 18, kOffset = 8, kCodeBytes = 256;
  static constexpr bool kNibbles = true, kHigh = false, kTable = false;
  static uint8_t code(const uint8_t* blk, int e) {
    return (uint8_t)(e < 16 ? blk[2 + e] & 0x0F : blk[2 + e - 16] >> 4);
  }
};

struct RIQ4_NL {  // nibble = codebook index; the biased codebook (value + 128) is applied on unpack
  static constexpr int kBlockBytes = 18, kOffset = 128, kCodeBytes = 256;
  static constexpr bool kNibbles = true, kHigh = false, kTable = true;
  static uint8_t code(const uint8_t* blk, int e) { return RQ4_0::code(blk, e); }
};

// Q5_0 as whole 5-bit codes in bytes (1.5x its size): the nibble + high-bit-mask form (kHigh) measured
// 2-5x slower (mask register traffic in the inner loop).
struct RQ5_0 {
  static constexpr int kBlockBytes = 22, kOffset = 16, kCodeBytes = 512;
  static constexpr bool kNibbles = false, kHigh = false, kTable = false;
  static uint8_t code(const uint8_t* blk, int e) {
    const uint8_t lo = (uint8_t)(e < 16 ? blk[6 + e] & 0x0F : blk[6 + e - 16] >> 4);
    return (uint8_t)(lo | (((ld_u32(blk + 2) >> e) & 1) << 4));
  }
  static bool high(const uint8_t*, int) { return false; }
};

template <class F>
constexpr size_t kMaskBytes = F::kHigh ? 64 : 0;

template <class F>
size_t group_bytes(int64_t n) {
  return ((size_t)(n / 32) * (F::kCodeBytes + kMaskBytes<F> + 32) + 63) / 64 * 64;
}

template <class F>
void repack(int64_t n, const void* w, size_t w_row_bytes, int64_t N, int64_t g0, int64_t g1, void* dst) {
  const int64_t nb = n / 32;
  const size_t gb = group_bytes<F>(n);
  const size_t used = (size_t)nb * (F::kCodeBytes + kMaskBytes<F> + 32);
  for (int64_t g = g0; g < g1; ++g) {
    uint8_t* codes = static_cast<uint8_t*>(dst) + (size_t)(g - g0) * gb;
    uint8_t* masks = codes + nb * F::kCodeBytes;
    uint8_t* scales = masks + nb * kMaskBytes<F>;
    // Every byte of a row below N is stored below; zeros for the rest (rows past N, the masks that are
    // or-ed, the padding).
    if (F::kHigh || (g + 1) * kG > N) {
      std::memset(codes, 0, gb);
    } else {
      std::memset(codes + used, 0, gb - used);
    }
    for (int j = 0; j < kG; ++j) {
      const int64_t r = g * kG + j;
      if (r >= N) break;
      const uint8_t* row = static_cast<const uint8_t*>(w) + (size_t)r * w_row_bytes;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = row + b * F::kBlockBytes;
        uint8_t* cb = codes + b * F::kCodeBytes;
        if constexpr (F::kNibbles && F::kBlockBytes == 18) {  // Q4_0, IQ4_NL: codes = the nibbles of qs
          // register h, byte 4j+i = code 8h+i | code 8h+4+i << 4; codes 0..15 are the low nibbles of
          // qs[0..15], codes 16..31 the high ones: h = 0, 1 from the low nibbles of qs bytes 8h..8h+7, h = 2,
          // 3 from the high nibbles of qs bytes 8(h-2)..8(h-2)+7.
          for (int half = 0; half < 2; ++half) {
            uint64_t x;
            std::memcpy(&x, blk + 2 + 8 * half, 8);
            const uint32_t lo = (uint32_t)x, hi = (uint32_t)(x >> 32);
            const uint32_t low_nibbles = (lo & 0x0F0F0F0Fu) | (hi & 0x0F0F0F0Fu) << 4;
            const uint32_t high_nibbles = (lo >> 4 & 0x0F0F0F0Fu) | (hi & 0xF0F0F0F0u);
            std::memcpy(cb + 64 * half + 4 * j, &low_nibbles, 4);
            std::memcpy(cb + 64 * (2 + half) + 4 * j, &high_nibbles, 4);
          }
          std::memcpy(scales + b * 32 + 2 * j, blk, 2);
          continue;
        }
        uint8_t c[32];
        for (int e = 0; e < 32; ++e) c[e] = F::code(blk, e);
        if constexpr (F::kNibbles) {  // register h, byte 4j+i = code 8h+i | code 8h+4+i << 4
          for (int h = 0; h < 4; ++h) {
            uint8_t v[4];
            for (int i = 0; i < 4; ++i) v[i] = (uint8_t)(c[8 * h + i] | c[8 * h + 4 + i] << 4);
            std::memcpy(cb + 64 * h + 4 * j, v, 4);
          }
        } else {  // register q, lane j = codes 4q..4q+3
          for (int q = 0; q < 8; ++q) std::memcpy(cb + 64 * q + 4 * j, c + 4 * q, 4);
        }
        if constexpr (F::kHigh) {
          for (int e = 0; e < 32; ++e) {
            const int q = e / 4, i = e % 4;
            if (F::high(blk, e)) masks[b * 64 + 8 * q + (4 * j + i) / 8] |= (uint8_t)(1u << ((4 * j + i) % 8));
          }
        }
        std::memcpy(scales + b * 32 + 2 * j, blk, 2);
      }
    }
  }
}

constexpr std::array<uint8_t, 16> kIQ4Biased = [] {
  std::array<uint8_t, 16> a{};
  for (int i = 0; i < 16; ++i) a[i] = (uint8_t)(kIQ4NLValues[i] + 128);
  return a;
}();

// The 8 code registers of block b (register q, lane j = unsigned codes 4q..4q+3 of row j).
template <class F>
__attribute__((always_inline)) inline void unpack(const uint8_t* codes, const uint8_t* masks, int64_t b,
                                                  __m512i wq[8]) {
  const uint8_t* cb = codes + b * F::kCodeBytes;
  if constexpr (!F::kNibbles) {
    unroll<8>([&](auto q) { wq[q] = _mm512_load_si512(cb + 64 * q); });
  } else {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    unroll<4>([&](auto h) {
      const __m512i p = _mm512_load_si512(cb + 64 * h);
      wq[2 * h] = _mm512_and_si512(p, m4);
      wq[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
    });
    if constexpr (F::kTable) {
      const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)kIQ4Biased.data()));
      unroll<8>([&](auto q) { wq[q] = _mm512_shuffle_epi8(table, wq[q]); });
    }
    if constexpr (F::kHigh) {
      const __m512i sixteen = _mm512_set1_epi8(16);
      unroll<8>([&](auto q) {
        __mmask64 k;
        std::memcpy(&k, masks + b * 64 + 8 * q, 8);
        wq[q] = _mm512_mask_add_epi8(wq[q], k, wq[q], sixteen);
      });
    }
  }
}

// Activations, per column, per block: [32 codes | dx f32 | corr i32 = -offset * sum(codes)].
constexpr size_t kXBlock = 40;

template <class F>
void pack_cols(const uint8_t* x, size_t x_row_bytes, int64_t cols, int64_t nb, uint8_t* dst) {
  for (int64_t c = 0; c < cols; ++c) {
    uint8_t* p = dst + c * nb * kXBlock;
    for (int64_t b = 0; b < nb; ++b, p += kXBlock) {
      const uint8_t* blk = x + c * x_row_bytes + b * 34;
      const __m256i q = _mm256_loadu_si256((const __m256i*)(blk + 2));
      _mm256_storeu_si256((__m256i*)p, q);
      const float dx = _cvtsh_ss(ld_u16(blk));
      std::memcpy(p + 32, &dx, 4);
      const __m256i s4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), q);
      __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
      s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
      const int32_t corr = -F::kOffset * _mm_cvtsi128_si32(s);
      std::memcpy(p + 36, &corr, 4);
    }
  }
}

// One group (16 rows) x C columns; rows outside `store` (a lane mask) are not written.
template <class F, int C>
void group_tile(int64_t nb, const uint8_t* grp, const uint8_t* xl, size_t xb, float* y, int64_t ldy,
                __mmask16 store) {
  const uint8_t* masks = grp + nb * F::kCodeBytes;
  const uint8_t* scales = masks + nb * kMaskBytes<F>;
  __m512 acc[C][4];
  unroll<C>([&](auto c) { unroll<4>([&](auto j) { acc[c][j] = _mm512_setzero_ps(); }); });
  auto block = [&](int64_t b, auto chain) __attribute__((always_inline)) {
    __m512i wq[8];
    unpack<F>(grp, masks, b, wq);
    const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i*)(scales + b * 32)));
    unroll<C>([&](auto c) {
      const uint8_t* xp = xl + c * xb + b * kXBlock;
      __m512i isum = bcast_i32(xp + 36);
      unroll<8>([&](auto q) { isum = _mm512_dpbusd_epi32(isum, wq[q], bcast_i32(xp + 4 * q)); });
      const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(ld_f32(xp + 32)));
      acc[c][chain] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), s, acc[c][chain]);
    });
  };
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) unroll<4>([&](auto j) { block(b + j, j); });
  unroll<4>([&](auto j) {
    if (b + j < nb) block(b + j, j);
  });
  unroll<C>([&](auto c) {
    const __m512* a = acc[c];
    _mm512_mask_storeu_ps(y + c * ldy, store, _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3])));
  });
}

constexpr int kCols = 4;
constexpr size_t kPanelBytes = 384 * 1024;  // weight groups per panel (re-read from L2 per column tile)

template <class F>
void gemm_repacked(int64_t n, const void* wp, int64_t r0, int64_t r1, const void* x, size_t x_row_bytes, int64_t T,
                   float* y, int64_t ldy) {
  if (r0 >= r1 || T <= 0) return;
  thread_local std::vector<uint8_t> xbuf;
  const int64_t nb = n / 32;
  const size_t xb = (size_t)nb * kXBlock, gb = group_bytes<F>(n);
  uint8_t* xl = grow(xbuf, (size_t)T * xb);
  pack_cols<F>(static_cast<const uint8_t*>(x), x_row_bytes, T, nb, xl);
  const auto* w = static_cast<const uint8_t*>(wp);
  const int64_t g_first = r0 / kG, g_last = (r1 + kG - 1) / kG;
  const int64_t panel = std::max<int64_t>(1, (int64_t)(kPanelBytes / gb));
  for (int64_t p0 = g_first; p0 < g_last; p0 += panel) {
    const int64_t p1 = std::min(g_last, p0 + panel);
    for (int64_t t0 = 0; t0 < T; t0 += kCols) {
      const uint8_t* xc = xl + t0 * xb;
      for (int64_t g = p0; g < p1; ++g) {
        const int64_t lo = std::max(r0, g * kG) - g * kG, hi = std::min(r1, g * kG + kG) - g * kG;
        const __mmask16 store = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
        const uint8_t* grp = w + (size_t)g * gb;
        float* out = y + t0 * ldy + g * kG;
        switch (std::min<int64_t>(kCols, T - t0)) {
          case 1: group_tile<F, 1>(nb, grp, xc, xb, out, ldy, store); break;
          case 2: group_tile<F, 2>(nb, grp, xc, xb, out, ldy, store); break;
          case 3: group_tile<F, 3>(nb, grp, xc, xb, out, ldy, store); break;
          default: group_tile<F, 4>(nb, grp, xc, xb, out, ldy, store); break;
        }
      }
    }
  }
}

template <class F>
void fill(QuantTraits* row) {
  row->repack_group_bytes = group_bytes<F>;
  row->repack = repack<F>;
  row->gemm_repacked = gemm_repacked<F>;
}

}  // namespace

void fill_repacked(QuantTraits* row) {
  switch (row->type) {
    case DType::Q8_0: fill<RQ8_0>(row); break;
    case DType::Q4_0: fill<RQ4_0>(row); break;
    case DType::Q5_0: fill<RQ5_0>(row); break;
    case DType::IQ4_NL: fill<RIQ4_NL>(row); break;
    default: fill_repacked_kquant(row); break;
  }
}

}  // namespace frugal::avx512
