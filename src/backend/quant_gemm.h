// Tiled gemm driver shared by the SIMD kernel files (quant_*_avx2.cpp, quant_avx512.cpp). The AVX-512
// legacy and K-quant kernels (quant_legacy_avx512.cpp, quant_kquants_avx512.cpp) have their own
// drivers (row walk / lane = row) and only borrow the helpers here.
//
// Everything here has internal linkage (anonymous namespace) on purpose: each ISA translation unit is
// compiled with different -m flags, and a shared inline/template definition could otherwise be merged
// by the linker into the copy built for the wider ISA.
//
// A kernel type Kern provides
//   static constexpr int kRows, kCols;      // largest register tile: weight rows x activation columns
//   template <int R, int C> static void tile(const TileArgs& a);
// where tile computes, for r < R, c < C:  a.y[c * a.ldy + r] = dot(W row r, activation column c)
// with W row r at a.w + r * a.w_row_bytes and column c at a.x + c * a.x_row_bytes, both n elements.
// Each (r, c) result must come from its own accumulator with the same instruction sequence for every
// R and C (so tile<1,1> is the ISA's vec_dot and any tile gives bit-identical values).
//
// Paths of gemm_tiles (all give the same bits for a given (row, token), see above):
//  * T <= kSequentialRowsMaxT (decode): one weight row at a time, so W is read as one sequential
//    stream; kernels with a packed path pack the activations once first (gemm_rows_xpacked).
//  * kernels with a packed path and T >= kPackMinT (prefill): gemm_tiles_packed, panels of weight rows
//    decoded once into L2, activation tiles decoded per K chunk into L1.
//  * otherwise: rows [r0, r1) in L2-sized panels; for each panel, column tiles of kCols tokens, and
//    inside them the panel's row tiles. A panel's weights are read from memory once and re-read from
//    L2 for each column tile.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace frugal {
namespace {  // NOLINT: see the header comment

struct TileArgs {
  int64_t n;
  const uint8_t* w;
  size_t w_row_bytes;
  const uint8_t* x;
  size_t x_row_bytes;
  float* y;
  int64_t ldy;
  // Packed tiles only: K is processed in chunks; the R x C accumulator vectors travel between chunks
  // through acc[(r * C + c) * lanes] (an exact store/reload). acc_in: start from acc instead of 0;
  // acc_out: store to acc instead of finishing into y.
  float* acc = nullptr;
  bool acc_in = false, acc_out = false;
};

using TileFn = void (*)(const TileArgs&);

// A 64-byte aligned view of at least `bytes` bytes of v (grow-only): packed vectors are written and
// read as whole cache lines.
inline uint8_t* grow(std::vector<uint8_t>& v, size_t bytes) {
  if (v.size() < bytes + 64) v.resize(bytes + 64);
  const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return v.data() + ((64 - (p & 63)) & 63);
}

// Calls f(std::integral_constant<int, i>) for i = 0 .. N-1, fully unrolled.
template <int N, class F>
__attribute__((always_inline)) inline void unroll(F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) __attribute__((always_inline)) {
    (f(std::integral_constant<int, I>{}), ...);
  }(std::make_integer_sequence<int, N>{});
}

template <class Kern, int R, int C>
void tile_entry(const TileArgs& a) {
  Kern::template tile<R, C>(a);
}

template <class Kern, size_t... I>
constexpr std::array<TileFn, sizeof...(I)> make_tile_table(std::index_sequence<I...>) {
  return {&tile_entry<Kern, (int)(I / Kern::kCols) + 1, (int)(I % Kern::kCols) + 1>...};
}

template <class Kern>
constexpr std::array<TileFn, Kern::kRows * Kern::kCols> kTileTable =
    make_tile_table<Kern>(std::make_index_sequence<Kern::kRows * Kern::kCols>{});

constexpr size_t kPanelBytes = 256 * 1024;  // weight bytes per panel (fits L2 with room for activations)
// Up to this many tokens, rows are processed one at a time: W is then read as one sequential stream,
// which the hardware prefetchers follow far better than several interleaved row streams (measured
// 1.5-2x more DRAM bandwidth for a single-row walk on AMD Zen 5). Larger T is compute-bound and
// uses the full register tile.
constexpr int64_t kSequentialRowsMaxT = 2;

// Optional packed path. A kernel may also provide
//   static constexpr int64_t kStepElems;                  // elements per packed step
//   static constexpr size_t kRowStepBytes, kColStepBytes;  // packed bytes per step
//   static void pack_rows(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t n, uint8_t* dst);
//   static void pack_cols(const uint8_t* x, size_t x_row_bytes, int64_t cols, int64_t n, int64_t k0,
//                         int64_t kn, uint8_t* dst);  // steps covering elements [k0, k0 + kn)
//   template <int R, int C> static void tile_packed(const TileArgs& a);   // a.w/a.x: packed data
// where packing precomputes, once per panel (rows) or per column tile and K chunk, the vectors tile()
// derives from the raw blocks on every step (unsigned codes, scale vectors, offset corrections), so
// that the inner loop is left with the multiply-adds. tile_packed must do tile()'s exact arithmetic,
// honoring TileArgs::acc (K chunks).
template <class Kern>
concept PackableKernel = requires(const uint8_t* src, uint8_t* dst, size_t stride, int64_t n) {
  Kern::kStepElems;
  Kern::kRowStepBytes;
  Kern::kColStepBytes;
  Kern::pack_rows(src, stride, n, n, dst);
  Kern::pack_cols(src, stride, n, n, n, n, dst);
};

constexpr int64_t kPackMinT = 8;              // packing pays off once a panel is reused by this many tokens
constexpr size_t kPackedPanelBytes = 512 * 1024;  // packed weight rows per panel (L2)
constexpr size_t kPackedColTileBytes = 24 * 1024;  // packed activation tile per K chunk (L1)

template <class Kern, int R, int C>
void packed_tile_entry(const TileArgs& a) {
  Kern::template tile_packed<R, C>(a);
}

template <class Kern, int R, int C>
void xpacked_tile_entry(const TileArgs& a) {
  Kern::template tile_xpacked<R, C>(a);
}

// Small T (decode): raw weight rows, one at a time (sequential stream), against activations packed
// once for the whole K -- the activation-side work leaves the per-row loop. tile_xpacked: tile() with
// packed activations (same arithmetic).
template <class Kern>
void gemm_rows_xpacked(int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0, int64_t r1, const uint8_t* x,
                       size_t x_row_bytes, int64_t T, float* y, int64_t ldy) {
  thread_local std::vector<uint8_t> xbuf;
  const int64_t steps = (n + Kern::kStepElems - 1) / Kern::kStepElems;
  const size_t pcb = (size_t)steps * Kern::kColStepBytes;
  uint8_t* xp = grow(xbuf, (size_t)T * pcb);
  Kern::pack_cols(x, x_row_bytes, T, n, 0, n, xp);
  const TileFn fn = T == 1 ? &xpacked_tile_entry<Kern, 1, 1> : &xpacked_tile_entry<Kern, 1, 2>;
  int64_t r = r0;
  if (T == 1 && Kern::kRows >= 4) {
    // Four rows at a time, one from each quarter of the range: four independent FMA chains (one row's
    // chain alone is latency-bound: 4 cycles per 16 elements) over four long sequential streams (four
    // adjacent rows are four short streams, which the prefetchers follow badly). Each row's arithmetic is
    // tile<1, 1>'s, so the bits do not change.
    const int64_t q = (r1 - r0) / 4;
    float out[4];
    for (int64_t j = 0; j < q; ++j) {
      xpacked_tile_entry<Kern, 4, 1>(TileArgs{n, w + (size_t)(r0 + j) * w_row_bytes, (size_t)q * w_row_bytes, xp, pcb, out, 1});
      for (int k = 0; k < 4; ++k) y[r0 + j + k * q] = out[k];
    }
    r = r0 + 4 * q;
  }
  for (; r < r1; ++r) fn(TileArgs{n, w + (size_t)r * w_row_bytes, w_row_bytes, xp, pcb, y + r, ldy});
}

template <class Kern, size_t... I>
constexpr std::array<TileFn, sizeof...(I)> make_packed_tile_table(std::index_sequence<I...>) {
  return {&packed_tile_entry<Kern, (int)(I / Kern::kCols) + 1, (int)(I % Kern::kCols) + 1>...};
}

template <class Kern>
constexpr std::array<TileFn, Kern::kRows * Kern::kCols> kPackedTileTable =
    make_packed_tile_table<Kern>(std::make_index_sequence<Kern::kRows * Kern::kCols>{});


// Loop order: panel of rows (packed once) -> column tile -> K chunk (columns packed per chunk, small
// enough for L1) -> row tiles, accumulators carried across chunks in `acc` (per panel row tile).
template <class Kern>
void gemm_tiles_packed(int64_t n, const uint8_t* w, size_t w_row_bytes, int64_t r0, int64_t r1, const uint8_t* x,
                       size_t x_row_bytes, int64_t T, float* y, int64_t ldy) {
  constexpr int R = Kern::kRows, C = Kern::kCols;
  constexpr int64_t kLanes = 16;
  thread_local std::vector<uint8_t> wbuf, xbuf, abuf;  // grow-only, per thread
  const int64_t steps = (n + Kern::kStepElems - 1) / Kern::kStepElems;
  const size_t prb = (size_t)steps * Kern::kRowStepBytes;
  const int64_t panel = std::clamp<int64_t>((int64_t)(kPackedPanelBytes / prb) / R * R, R, 512);
  const int64_t chunk_steps = std::max<int64_t>(1, (int64_t)(kPackedColTileBytes / (C * Kern::kColStepBytes)));
  const int64_t chunk = std::min(n, chunk_steps * Kern::kStepElems);
  const size_t pcb = (size_t)((chunk + Kern::kStepElems - 1) / Kern::kStepElems) * Kern::kColStepBytes;
  uint8_t* wp = grow(wbuf, (size_t)panel * prb);
  uint8_t* xp = grow(xbuf, (size_t)C * pcb);
  float* accp = reinterpret_cast<float*>(grow(abuf, (size_t)panel * C * kLanes * sizeof(float)));
  for (int64_t p0 = r0; p0 < r1; p0 += panel) {
    const int64_t p1 = std::min(r1, p0 + panel);
    Kern::pack_rows(w + (size_t)p0 * w_row_bytes, w_row_bytes, p1 - p0, n, wp);
    for (int64_t t0 = 0; t0 < T; t0 += C) {
      const int c = (int)std::min<int64_t>(C, T - t0);
      for (int64_t k0 = 0; k0 < n; k0 += chunk) {
        const int64_t kn = std::min(chunk, n - k0);
        const size_t kcb = (size_t)((kn + Kern::kStepElems - 1) / Kern::kStepElems) * Kern::kColStepBytes;
        Kern::pack_cols(x + (size_t)t0 * x_row_bytes, x_row_bytes, c, n, k0, kn, xp);
        for (int64_t r = p0; r < p1; r += R) {
          const int rr = (int)std::min<int64_t>(R, p1 - r);
          TileArgs a{kn, wp + (size_t)(r - p0) * prb + (size_t)(k0 / Kern::kStepElems) * Kern::kRowStepBytes,
                     prb, xp, kcb, y + t0 * ldy + r, ldy};
          a.acc = accp + (r - p0) * C * kLanes;
          a.acc_in = k0 > 0;
          a.acc_out = k0 + kn < n;
          kPackedTileTable<Kern>[(size_t)(rr - 1) * C + (c - 1)](a);
        }
      }
    }
  }
}

// Decode slices: a kernel may declare `static constexpr int kDecodeSlices` (1 .. kRows): with T == 1 the
// unpacked path then reads that many rows at once, one from each slice of the range (long sequential
// streams, as gemm_rows_xpacked), instead of one row at a time. Per format, where measured faster.
template <class Kern>
constexpr int decode_slices() {
  if constexpr (requires { Kern::kDecodeSlices; }) {
    static_assert(Kern::kDecodeSlices >= 1 && Kern::kDecodeSlices <= Kern::kRows);
    return Kern::kDecodeSlices;
  }
  return 1;
}

template <class Kern>
void gemm_tiles(int64_t n, const void* w, size_t w_row_bytes, int64_t r0, int64_t r1, const void* x,
                size_t x_row_bytes, int64_t T, float* y, int64_t ldy) {
  if constexpr (decode_slices<Kern>() > 1) {
    if (T == 1) {  // rows r0 + j + k q (k < S) at once, through tile<S, 1>: each row's arithmetic unchanged
      constexpr int S = decode_slices<Kern>();
      const auto* wb = static_cast<const uint8_t*>(w);
      const auto* xb = static_cast<const uint8_t*>(x);
      const int64_t q = (r1 - r0) / S;
      float out[S];
      for (int64_t j = 0; j < q; ++j) {
        tile_entry<Kern, S, 1>(TileArgs{n, wb + (size_t)(r0 + j) * w_row_bytes, (size_t)q * w_row_bytes, xb,
                                        x_row_bytes, out, 1});
        for (int k = 0; k < S; ++k) y[r0 + j + k * q] = out[k];
      }
      for (int64_t r = r0 + S * q; r < r1; ++r)
        tile_entry<Kern, 1, 1>(TileArgs{n, wb + (size_t)r * w_row_bytes, w_row_bytes, xb, x_row_bytes, y + r, ldy});
      return;
    }
  }
  if constexpr (PackableKernel<Kern>) {
    static_assert(kSequentialRowsMaxT == 2 && Kern::kCols >= 2);
    if (T <= kSequentialRowsMaxT) {
      gemm_rows_xpacked<Kern>(n, static_cast<const uint8_t*>(w), w_row_bytes, r0, r1, static_cast<const uint8_t*>(x),
                              x_row_bytes, T, y, ldy);
      return;
    }
    if (T >= kPackMinT) {
      gemm_tiles_packed<Kern>(n, static_cast<const uint8_t*>(w), w_row_bytes, r0, r1, static_cast<const uint8_t*>(x),
                              x_row_bytes, T, y, ldy);
      return;
    }
  }
  constexpr int C = Kern::kCols;
  const int R = T <= kSequentialRowsMaxT ? 1 : Kern::kRows;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(x);
  int64_t panel = (int64_t)(kPanelBytes / std::max<size_t>(w_row_bytes, 1)) / R * R;
  panel = std::clamp<int64_t>(panel, R, 512);
  for (int64_t p0 = r0; p0 < r1; p0 += panel) {
    const int64_t p1 = std::min(r1, p0 + panel);
    for (int64_t t0 = 0; t0 < T; t0 += C) {
      const int c = (int)std::min<int64_t>(C, T - t0);
      for (int64_t r = p0; r < p1; r += R) {
        const int rr = (int)std::min<int64_t>(R, p1 - r);
        const TileArgs a{n, wb + (size_t)r * w_row_bytes, w_row_bytes, xb + (size_t)t0 * x_row_bytes, x_row_bytes,
                         y + t0 * ldy + r, ldy};
        kTileTable<Kern>[(size_t)(rr - 1) * C + (c - 1)](a);
      }
    }
  }
}

// vec_dot through the 1x1 tile: the same arithmetic as every gemm tile.
template <class Kern>
void vec_dot_tile(int64_t n, float* s, const void* x, const void* y) {
  const TileArgs a{n, static_cast<const uint8_t*>(x), 0, static_cast<const uint8_t*>(y), 0, s, 1};
  Kern::template tile<1, 1>(a);
}

}  // namespace
}  // namespace frugal
