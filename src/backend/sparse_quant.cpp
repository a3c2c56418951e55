// Sparse rows of the quant traits table: expand-then-dense kernels (see sparse_quant.h), the scalar
// dequantizer and the magnitude-pruning quantizer.
#include "backend/sparse_quant.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "base/check.h"

namespace frugal {

namespace {

// Dense bytes expanded per chunk: decode keeps the chunk in L1/L2 next to the activations; prefill
// (T >= kPrefillT) uses larger chunks so the dense kernel's activation packing is amortized.
constexpr size_t kDecodeChunkBytes = 48 * 1024;
constexpr size_t kPrefillChunkBytes = 512 * 1024;
constexpr int64_t kPrefillT = 8;

struct Ctx {
  const SparseTypeInfo* f;
  const QuantTraits* base;
  SparseExpandFn expand;
  SparseWalkFn walk;  // decode kernel expanding in registers, or nullptr
};

bool g_walk_enabled = true;

SparseExpandFn expander_for(Isa isa) {
  SparseExpandFn e = nullptr;
  if (isa == Isa::kAvx512) e = sparse_expander_avx512();
  if (isa == Isa::kAvx2 || (isa == Isa::kAvx512 && e == nullptr)) e = sparse_expander_avx2();
  return e != nullptr ? e : &sparse_expand_row;
}

template <int kIdx, int kIsa>
const Ctx& ctx() {
  static const Ctx c = [] {
    const SparseTypeInfo* f = &sparse_type_at(kIdx);
    const QuantTraits* base = quant_traits(f->base, (Isa)kIsa);
    FRUGAL_CHECK(base != nullptr && base->vec_dot != nullptr);
    SparseWalkFn walk = nullptr;
    if ((Isa)kIsa == Isa::kAvx512) {
      walk = sparse_walk_avx512(*f);
      if (walk == nullptr) walk = sparse_walk_avx512_novbmi(*f);  // without VBMI: 1:4 / 2:4 in AVX2 code
    } else if ((Isa)kIsa == Isa::kAvx2) {
      walk = sparse_walk_avx2(*f);
    }
    return Ctx{f, base, expander_for((Isa)kIsa), walk};
  }();
  return c;
}

uint8_t* scratch(size_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < bytes) buf.resize(bytes);
  return buf.data();
}

template <int kIdx>
void to_float(const void* src, float* dst, int64_t n) {
  const SparseTypeInfo& f = sparse_type_at(kIdx);
  const QuantTraits* base = quant_traits(f.base, Isa::kScalar);
  alignas(64) uint8_t dense[kSparseGroupBlocks * 64];
  const int64_t nb = n / kSparseBlock;
  for (int64_t g = 0; g < sparse_group_count(nb); ++g) {
    // A group is a planar row of its own (tensor/sparse_nm.h): expand it, then convert.
    const SparseGroup grp = sparse_group(f, src, nb, g);
    sparse_expand_row(f, grp.p.d, dense, grp.cnt * kSparseBlock);
    base->to_float(dense, dst + grp.b0 * kSparseBlock, grp.cnt * kSparseBlock);
  }
}

// Magnitude pruning of one row (keep the N largest |x| of every group of M; ties: lower index), then
// the base format's weight quantizer, then compression.
template <int kIdx>
void from_float(const float* src, void* dst, int64_t n) {
  const SparseTypeInfo& f = sparse_type_at(kIdx);
  float pruned[kSparseBlock];
  const int64_t nb = n / kSparseBlock;
  std::vector<uint8_t> dense_row((size_t)nb * f.dense_block_bytes);
  std::vector<uint32_t> masks((size_t)nb);
  for (int64_t b = 0; b < nb; ++b) {
    const float* x = src + b * kSparseBlock;
    uint32_t mask = 0;
    for (int g = 0; g < kSparseBlock / f.m; ++g) {
      std::array<int, 16> idx{};
      for (int j = 0; j < f.m; ++j) idx[(size_t)j] = g * f.m + j;
      std::stable_sort(idx.begin(), idx.begin() + f.m,
                       [&](int a, int c) { return std::fabs(x[a]) > std::fabs(x[c]); });
      for (int j = 0; j < f.n; ++j) mask |= 1u << idx[(size_t)j];
    }
    for (int j = 0; j < kSparseBlock; ++j) pruned[j] = (mask >> j & 1) ? x[j] : 0.0f;
    quantize_row_weights(f.base, pruned, dense_row.data() + (size_t)b * f.dense_block_bytes, kSparseBlock);
    masks[(size_t)b] = mask;
  }
  sparse_compress_row(f, dense_row.data(), masks.data(), dst, n);
}

template <int kIdx, int kIsa>
void vec_dot(int64_t n, float* s, const void* x, const void* y) {
  const Ctx& c = ctx<kIdx, kIsa>();
  if (c.walk != nullptr && g_walk_enabled) {
    c.walk(*c.f, n, static_cast<const uint8_t*>(x), 0, 0, 1, static_cast<const uint8_t*>(y), 0, 1, s, 1);
    return;
  }
  const int64_t nb = n / kSparseBlock;
  uint8_t* dense = scratch((size_t)nb * c.f->dense_block_bytes);
  c.expand(*c.f, x, dense, n);
  c.base->vec_dot(n, s, dense, y);
}

template <int kIdx, int kIsa>
void gemm(int64_t n, const void* w, size_t w_row_bytes, int64_t r0, int64_t r1, const void* x, size_t x_row_bytes,
          int64_t T, float* y, int64_t ldy) {
  if (r0 >= r1 || T <= 0) return;
  const Ctx& c = ctx<kIdx, kIsa>();
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(x);
  if (c.walk != nullptr && g_walk_enabled && T < kSparseWalkMaxT) {
    c.walk(*c.f, n, wb, w_row_bytes, r0, r1, xb, x_row_bytes, T, y, ldy);
    return;
  }
  const int64_t nb = n / kSparseBlock;
  const size_t drb = (size_t)nb * c.f->dense_block_bytes;
  const size_t budget = T >= kPrefillT ? kPrefillChunkBytes : kDecodeChunkBytes;
  const int64_t chunk = std::clamp<int64_t>((int64_t)(budget / drb), 1, r1 - r0);
  uint8_t* dense = scratch((size_t)chunk * drb);
  for (int64_t r = r0; r < r1; r += chunk) {
    const int64_t rows = std::min(chunk, r1 - r);
    for (int64_t i = 0; i < rows; ++i) c.expand(*c.f, wb + (size_t)(r + i) * w_row_bytes, dense + i * drb, n);
    if (c.base->gemm != nullptr) {
      c.base->gemm(n, dense, drb, 0, rows, x, x_row_bytes, T, y + r, ldy);
    } else {
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t t = 0; t < T; ++t) c.base->vec_dot(n, &y[t * ldy + r + i], dense + i * drb, xb + t * x_row_bytes);
    }
  }
}

// The base format's repacked form of rows [16 g0, 16 g1) (QuantTraits::repack): each group of 16 rows
// expanded into dense base rows, then repacked by the base format. Its gemm_repacked then gives the
// dense kernels' values on the expanded rows, i.e. the sparse values (bit for bit).
template <int kIdx, int kIsa>
void repack(int64_t n, const void* w, size_t w_row_bytes, int64_t N, int64_t g0, int64_t g1, void* dst) {
  const Ctx& c = ctx<kIdx, kIsa>();
  const size_t drb = (size_t)(n / kSparseBlock) * c.f->dense_block_bytes;
  const size_t gb = c.base->repack_group_bytes(n);
  std::vector<uint8_t> dense((size_t)kRepackRows * drb);
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t r0 = g * kRepackRows, rows = std::min<int64_t>(kRepackRows, N - r0);
    for (int64_t i = 0; i < rows; ++i)
      c.expand(*c.f, static_cast<const uint8_t*>(w) + (size_t)(r0 + i) * w_row_bytes, dense.data() + i * drb, n);
    c.base->repack(n, dense.data(), drb, rows, 0, 1, static_cast<uint8_t*>(dst) + (size_t)(g - g0) * gb);
  }
}

// `dense`: this ISA's rows of the dense formats (the table under construction; quant_traits() cannot be
// called yet).
template <int kIdx, int kIsa>
QuantTraits row(const std::vector<QuantTraits>& dense) {
  const SparseTypeInfo& f = sparse_type_at(kIdx);
  const DType vdt = f.base == DType::F16 ? DType::F16 : DType::Q8_0;
  QuantTraits t{f.type, vdt, &to_float<kIdx>, &from_float<kIdx>, &vec_dot<kIdx, kIsa>,
                kIsa == (int)Isa::kScalar ? nullptr : &gemm<kIdx, kIsa>};
  // Prefill and large batches (T >= the base's repack_min_T, and past the register walk's T < 8) run on a
  // dense repacked copy kept beside the sparse weights like a dense model's (MatmulScratch, --repack-mem):
  // as fast as the dense file, at the dense copy's memory; decode keeps reading the sparse rows.
  const QuantTraits* base = nullptr;
  for (const QuantTraits& d : dense)
    if (d.type == f.base) base = &d;
  if (kIsa != (int)Isa::kScalar && base != nullptr && base->repack != nullptr) {
    const bool walk = (Isa)kIsa == Isa::kAvx512 && (sparse_walk_avx512(f) || sparse_walk_avx512_novbmi(f));
    t.repack_group_bytes = base->repack_group_bytes;
    t.repack = &repack<kIdx, kIsa>;
    t.gemm_repacked = base->gemm_repacked;
    t.repack_min_T = walk ? std::max(base->repack_min_T, kSparseWalkMaxT) : base->repack_min_T;
  }
  return t;
}

constexpr int kCount = 21;  // 3 bases x 7 patterns (checked against sparse_type_count())

template <int kIsa, size_t... I>
std::vector<QuantTraits> rows_for(const std::vector<QuantTraits>& dense, std::index_sequence<I...>) {
  return {row<(int)I, kIsa>(dense)...};
}

}  // namespace

void sparse_set_register_walk(bool enabled) { g_walk_enabled = enabled; }

std::vector<QuantTraits> sparse_quant_rows(Isa isa, const std::vector<QuantTraits>& dense) {
  FRUGAL_CHECK(sparse_type_count() == kCount);
  switch (isa) {
    case Isa::kScalar: return rows_for<(int)Isa::kScalar>(dense, std::make_index_sequence<kCount>{});
    case Isa::kAvx2: return rows_for<(int)Isa::kAvx2>(dense, std::make_index_sequence<kCount>{});
    case Isa::kAvx512: return rows_for<(int)Isa::kAvx512>(dense, std::make_index_sequence<kCount>{});
  }
  return {};
}

}  // namespace frugal
