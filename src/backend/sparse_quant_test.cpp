// N:M sparse types (tensor/sparse_nm.h, backend/sparse_quant.h): compress/expand round trips, SIMD
// expansion == scalar expansion, sparse kernels == dense kernels on the same pruned weights for the
// scalar reference and every SIMD ISA (bit for bit, T = 1..64, ragged shapes), batch invariance,
// magnitude from_float, and rejection of malformed keep masks.
#include <bit>
#include <cstring>
#include <random>
#include <vector>

#include "backend/matmul.h"
#include "backend/quant.h"
#include "backend/sparse_quant.h"
#include "gtest/gtest.h"
#include "tensor/sparse_nm.h"

namespace frugal {
namespace {

std::vector<float> normal_data(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> v((size_t)n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A sparse tensor of `rows` x n from random weights (magnitude-pruned by the type's from_float), and
// its expansion (the dense base tensor holding the same pruned weights).
struct Pair {
  std::vector<uint8_t> sparse, dense;
};

Pair make_pair(DType t, int64_t rows, int64_t n, uint32_t seed) {
  const SparseTypeInfo& f = *sparse_type_info(t);
  const std::vector<float> w = normal_data(rows * n, seed);
  Pair p;
  p.sparse.resize(dtype_row_bytes(t, n) * (size_t)rows);
  p.dense.resize(dtype_row_bytes(f.base, n) * (size_t)rows);
  const QuantTraits* q = quant_traits(t, Isa::kScalar);
  for (int64_t r = 0; r < rows; ++r) q->from_float(w.data() + r * n, p.sparse.data() + r * dtype_row_bytes(t, n), n);
  for (int64_t r = 0; r < rows; ++r)
    sparse_expand_row(f, p.sparse.data() + r * dtype_row_bytes(t, n), p.dense.data() + r * dtype_row_bytes(f.base, n), n);
  return p;
}

std::vector<Isa> isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    if (isa_supported(i)) v.push_back(i);
  return v;
}

std::vector<DType> all_types() {
  std::vector<DType> v;
  for (int i = 0; i < sparse_type_count(); ++i) v.push_back(sparse_type_at(i).type);
  return v;
}

TEST(SparseFormat, InfoAndDtypeTable) {
  for (DType t : all_types()) {
    const SparseTypeInfo& f = *sparse_type_info(t);
    EXPECT_EQ(dtype_block_size(t), kSparseBlock) << dtype_name(t);
    EXPECT_EQ((size_t)dtype_block_bytes(t), f.block_bytes) << dtype_name(t);
    EXPECT_TRUE(dtype_info(t).implemented);
    EXPECT_EQ(f.kept, 32 * f.n / f.m);
    DType back;
    ASSERT_TRUE(sparse_type_for(f.base, f.n, f.m, &back));
    EXPECT_EQ(back, t);
    ASSERT_TRUE(dtype_from_name(dtype_name(t), &back));
    EXPECT_EQ(back, t);
  }
  EXPECT_EQ(dtype_block_bytes(DType::Q8_0_S2_4), 21);  // 16 kept int8 + 3 bytes of codes + d (vs 34 dense)
  EXPECT_EQ(dtype_block_bytes(DType::Q4_0_S2_4), 13);  // vs 18
  EXPECT_EQ(dtype_block_bytes(DType::Q8_0_S1_4), 12);  // 8 kept + 2 bytes of codes + d
  EXPECT_EQ(dtype_block_bytes(DType::Q8_0_S4_8), 22);  // 16 kept + 32-bit mask + d
  EXPECT_EQ(dtype_block_bytes(DType::F16_S2_4), 35);
  EXPECT_FALSE(is_sparse_type(DType::Q8_0));
  int n = 0, m = 0;
  EXPECT_TRUE(parse_sparse_pattern("2:4", &n, &m));
  EXPECT_EQ(n * 10 + m, 24);
  EXPECT_FALSE(parse_sparse_pattern("3:4", &n, &m));
  EXPECT_FALSE(parse_sparse_pattern("2:4x", &n, &m));
  EXPECT_FALSE(parse_sparse_pattern(":4", &n, &m));
}

TEST(SparseFormat, FromFloatKeepsLargestAndRoundTrips) {
  for (DType t : all_types()) {
    const SparseTypeInfo& f = *sparse_type_info(t);
    const int64_t n = 256;
    const std::vector<float> w = normal_data(n, 11);
    std::vector<uint8_t> s(dtype_row_bytes(t, n));
    quant_traits(t, Isa::kScalar)->from_float(w.data(), s.data(), n);
    ASSERT_TRUE(validate_sparse_rows(f, s.data(), n, 1, "t").ok());
    std::vector<float> back((size_t)n);
    quant_traits(t, Isa::kScalar)->to_float(s.data(), back.data(), n);
    // The kept positions are the N largest |w| of each group; dropped ones decode to exactly 0 and the
    // kept ones equal the base format's quantization of the pruned row.
    std::vector<float> pruned(w);
    for (int64_t g = 0; g < n / f.m; ++g) {
      for (int j = 0; j < f.m; ++j) {
        int larger = 0;
        for (int i = 0; i < f.m; ++i) {
          const float a = std::fabs(w[(size_t)(g * f.m + i)]), b = std::fabs(w[(size_t)(g * f.m + j)]);
          larger += a > b || (a == b && i < j);
        }
        if (larger >= f.n) pruned[(size_t)(g * f.m + j)] = 0.f;
      }
    }
    std::vector<uint8_t> dq(dtype_row_bytes(f.base, n));
    quantize_row_weights(f.base, pruned.data(), dq.data(), n);
    std::vector<float> want((size_t)n);
    quant_traits(f.base, Isa::kScalar)->to_float(dq.data(), want.data(), n);
    for (int64_t j = 0; j < n; ++j) {
      ASSERT_EQ(back[(size_t)j], want[(size_t)j]) << dtype_name(t) << " j=" << j;
      if (pruned[(size_t)j] == 0.f) {
        ASSERT_EQ(back[(size_t)j], 0.f);
      }
    }
    // Compress(expand(x)) == x.
    std::vector<uint8_t> dense(dtype_row_bytes(f.base, n)), again(s.size());
    sparse_expand_row(f, s.data(), dense.data(), n);
    EXPECT_EQ(dense, dq) << dtype_name(t);
    std::vector<uint32_t> masks((size_t)(n / 32));
    for (int64_t g = 0; g < sparse_group_count(n / 32); ++g) {
      const SparseGroup grp = sparse_group(f, s.data(), n / 32, g);
      for (int i = 0; i < grp.cnt; ++i) masks[(size_t)(grp.b0 + i)] = sparse_mask(f, grp.p.mask, i);
    }
    sparse_compress_row(f, dense.data(), masks.data(), again.data(), n);
    EXPECT_EQ(again, s) << dtype_name(t);
  }
}

// The planar layout of a group (a row of at most 16 blocks) of docs/SPARSITY.md, byte by byte, on a
// hand-made 2:4 Q8_0 row of 2 blocks and a 1:4 Q4_0 row of 2 blocks.
TEST(SparseFormat, PlanarRowLayoutAsDocumented) {
  {
    const SparseTypeInfo& f = *sparse_type_info(DType::Q8_0_S2_4);
    std::vector<uint8_t> dense(2 * 34, 0);
    uint32_t masks[2] = {0, 0};
    for (int b = 0; b < 2; ++b) {
      dense[(size_t)b * 34] = (uint8_t)(0x10 + b);  // d = 0x3C10 / 0x3C11
      dense[(size_t)b * 34 + 1] = 0x3C;
      for (int g = 0; g < 8; ++g) {  // keep elements 4g + (g % 3) and 4g + 3
        const int j0 = 4 * g + g % 3, j1 = 4 * g + 3;
        dense[(size_t)b * 34 + 2 + (size_t)j0] = (uint8_t)(b * 64 + 2 * g + 1);
        dense[(size_t)b * 34 + 2 + (size_t)j1] = (uint8_t)(b * 64 + 2 * g + 2);
        masks[b] |= 1u << j0 | 1u << j1;
      }
    }
    std::vector<uint8_t> row(2 * f.block_bytes);
    sparse_compress_row(f, dense.data(), masks, row.data(), 64);
    EXPECT_EQ(row[0], 0x10);  // d plane: d0, d1
    EXPECT_EQ(row[1], 0x3C);
    EXPECT_EQ(row[2], 0x11);
    // Mask plane at 2 * 2: 3 bytes of position codes per block; group g keeps {g % 3, 3}, i.e. nibble
    // 0x9 / 0xA / 0xC = codes 3, 4, 5, code g at bit 3 g.
    uint32_t word = 0;
    for (int g = 0; g < 8; ++g) word |= (uint32_t)(3 + g % 3) << (3 * g);
    for (int b = 0; b < 2; ++b) {
      for (int i = 0; i < 3; ++i) EXPECT_EQ(row[4 + (size_t)(3 * b + i)], (word >> (8 * i)) & 0xFF) << b << " " << i;
      EXPECT_EQ(sparse_mask(f, row.data() + 4, b), masks[b]);
    }
    for (int b = 0; b < 2; ++b)  // kept plane at 2 * 5: 16 codes per block in element order
      for (int k = 0; k < 16; ++k) EXPECT_EQ(row[10 + (size_t)(16 * b + k)], b * 64 + k + 1) << b << " " << k;
    std::vector<uint8_t> back(dense.size());
    sparse_expand_row(f, row.data(), back.data(), 64);
    EXPECT_EQ(back, dense);
  }
  {
    const SparseTypeInfo& f = *sparse_type_info(DType::Q4_0_S1_4);  // K = 8 kept, 4 bytes per block
    std::vector<uint8_t> dense(2 * 18, 0x88);
    uint32_t masks[2] = {0x11111111u, 0x88888888u};  // keep element 0 (block 0) / 3 (block 1) of each group
    for (int b = 0; b < 2; ++b) {
      dense[(size_t)b * 18] = 0;
      dense[(size_t)b * 18 + 1] = 0x3C;
      for (int g = 0; g < 8; ++g) {
        const int j = 4 * g + (b ? 3 : 0);
        uint8_t& q = dense[(size_t)b * 18 + 2 + (size_t)(j % 16)];
        const uint8_t code = (uint8_t)(g + 1);
        q = j < 16 ? (uint8_t)((q & 0xF0) | code) : (uint8_t)((q & 0x0F) | code << 4);
      }
    }
    std::vector<uint8_t> row(2 * f.block_bytes);
    sparse_compress_row(f, dense.data(), masks, row.data(), 64);
    // Mask plane at 2 * 2: 2 bytes per block, code g = the kept position at bit 2 g (block 0: all 0,
    // block 1: all 3).
    EXPECT_EQ(row[4], 0x00);
    EXPECT_EQ(row[5], 0x00);
    EXPECT_EQ(row[6], 0xFF);
    EXPECT_EQ(row[7], 0xFF);
    // kept plane at 2 * (2 + 2): byte i = kept i | kept i + 4 << 4
    for (int b = 0; b < 2; ++b)
      for (int i = 0; i < 4; ++i) EXPECT_EQ(row[8 + (size_t)(4 * b + i)], (i + 1) | (i + 5) << 4) << b << " " << i;
    std::vector<uint8_t> back(dense.size());
    sparse_expand_row(f, row.data(), back.data(), 64);
    EXPECT_EQ(back, dense);
  }
}

// Rows longer than 16 blocks: groups of 16 blocks, each planar, the last one shorter; 1:4 / 2:4 over
// Q8_0 / Q4_0 store a full group's kept plane in lanes of 4 values (docs/SPARSITY.md).
TEST(SparseFormat, GroupedRowLayoutAsDocumented) {
  constexpr uint32_t kPairs[6] = {0x3, 0x5, 0x6, 0x9, 0xA, 0xC};  // the 2:4 position codes 0..5
  const SparseTypeInfo& f = *sparse_type_info(DType::Q8_0_S2_4);
  const int64_t nb = 18, n = nb * 32;
  std::vector<uint8_t> dense((size_t)nb * 34, 0);
  std::vector<uint32_t> masks((size_t)nb);
  for (int64_t b = 0; b < nb; ++b) {
    dense[(size_t)b * 34] = (uint8_t)b;  // d = 0x3C00 + b
    dense[(size_t)b * 34 + 1] = 0x3C;
    for (int g = 0; g < 8; ++g)  // group g keeps the pair of code (b + g) % 6 (nibbles 3 5 6 9 A C)
      masks[(size_t)b] |= (uint32_t)kPairs[(b + g) % 6] << (4 * g);
    int k = 0;
    for (int j = 0; j < 32; ++j)
      if (masks[(size_t)b] >> j & 1) dense[(size_t)b * 34 + 2 + (size_t)j] = (uint8_t)(b + k++);
  }
  std::vector<uint8_t> row((size_t)nb * f.block_bytes);
  sparse_compress_row(f, dense.data(), masks.data(), row.data(), n);
  auto u16 = [&](size_t o) { return (int)(row[o] | row[o + 1] << 8); };
  auto u24 = [&](size_t o) { return (uint32_t)(row[o] | row[o + 1] << 8 | row[o + 2] << 16); };
  for (int64_t b = 0; b < nb; ++b) {
    // Group 0: blocks 0..15 at byte 0 (d 16 x 2, codes 16 x 3, kept 16 x 16 in lanes: chunk c = kept
    // 4c..4c+3 of every block, block i at byte 64 c + 4 i); group 1: blocks 16, 17 at byte 16 x 21 = 336
    // (d 2 x 2, codes 2 x 3, kept 2 x 16 block by block).
    const size_t g0 = b < 16 ? 0 : 336, cnt = b < 16 ? 16 : 2, i = (size_t)(b % 16);
    EXPECT_EQ(u16(g0 + 2 * i), 0x3C00 + b) << b;
    uint32_t word = 0;
    for (int g = 0; g < 8; ++g) word |= (uint32_t)((b + g) % 6) << (3 * g);
    EXPECT_EQ(u24(g0 + 2 * cnt + 3 * i), word) << b;
    for (size_t k = 0; k < 16; ++k) {
      const size_t at = b < 16 ? 64 * (k / 4) + 4 * i + k % 4 : 16 * i + k;
      EXPECT_EQ(row[g0 + 5 * cnt + at], b + k) << b << " " << k;
    }
    const SparseGroup grp = sparse_group(f, row.data(), nb, b / 16);
    EXPECT_EQ(grp.p.d, row.data() + g0);
    EXPECT_EQ(grp.cnt, (int)cnt);
  }
  std::vector<uint8_t> back(dense.size());
  sparse_expand_row(f, row.data(), back.data(), n);
  EXPECT_EQ(back, dense);
}

// Q4_0 2:4 full group in lanes: chunk c (32 bytes), byte 4 (i mod 8) + u = kept 4c + u of block i mod 8
// (low nibble) | of block 8 + i mod 8 (high nibble).
TEST(SparseFormat, Q4LanesLayoutAsDocumented) {
  const SparseTypeInfo& f = *sparse_type_info(DType::Q4_0_S2_4);
  ASSERT_TRUE(f.kept_lanes);
  const int64_t nb = 16, n = nb * 32;
  std::vector<uint8_t> dense((size_t)nb * 18, 0x88);
  std::vector<uint32_t> masks((size_t)nb, 0x33333333u);  // keep elements 0 and 1 of every group
  auto code = [](int b, int k) { return (b * 5 + k * 3) % 15 + 1; };  // codes 1..15
  for (int b = 0; b < nb; ++b) {
    dense[(size_t)b * 18 + 1] = 0x3C;
    for (int k = 0; k < 16; ++k) {
      const int j = 4 * (k / 2) + k % 2;  // element of kept value k
      uint8_t& q = dense[(size_t)b * 18 + 2 + (size_t)(j % 16)];
      q = j < 16 ? (uint8_t)((q & 0xF0) | code(b, k)) : (uint8_t)((q & 0x0F) | code(b, k) << 4);
    }
  }
  std::vector<uint8_t> row((size_t)nb * f.block_bytes);
  sparse_compress_row(f, dense.data(), masks.data(), row.data(), n);
  const size_t kept = 16 * (2 + 3);  // after the d and code planes
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 8; ++l)
      for (int u = 0; u < 4; ++u)
        EXPECT_EQ(row[kept + (size_t)(32 * c + 4 * l + u)], code(l, 4 * c + u) | code(l + 8, 4 * c + u) << 4)
            << c << " " << l << " " << u;
  uint8_t tmp[64];
  const SparseGroup grp = sparse_group(f, row.data(), nb, 0);
  for (int b = 0; b < nb; ++b) {  // sparse_block_kept: the per-block form, byte t = kept t | kept t + 8 << 4
    const uint8_t* kv = sparse_block_kept(f, grp, b, tmp);
    for (int t = 0; t < 8; ++t) EXPECT_EQ(kv[t], code(b, t) | code(b, t + 8) << 4) << b << " " << t;
  }
  std::vector<uint8_t> back(dense.size());
  sparse_expand_row(f, row.data(), back.data(), n);
  EXPECT_EQ(back, dense);
}

TEST(SparseFormat, SimdExpansionEqualsScalar) {
  const std::vector<SparseExpandFn> fns = {isa_supported(Isa::kAvx2) ? sparse_expander_avx2() : nullptr,
                                           isa_supported(Isa::kAvx512) ? sparse_expander_avx512() : nullptr};
  for (DType t : all_types()) {
    const SparseTypeInfo& f = *sparse_type_info(t);
    const int64_t nb = 37;
    const Pair p = make_pair(t, 1, nb * 32, 5);
    // Also extreme codes: all-ones / all-zero kept bytes keep their masks (group 0's first bytes, in
    // lanes or block by block).
    std::vector<uint8_t> s = p.sparse;
    uint8_t* kept = s.data() + (sparse_group(f, s.data(), nb, 0).p.kept - s.data());
    for (int64_t b = 0; b < 4; ++b) std::memset(kept + b * f.kept_bytes, b % 2 ? 0xFF : 0x00, f.kept_bytes);
    std::vector<uint8_t> want(f.dense_block_bytes * nb), got(want.size());
    sparse_expand_row(f, s.data(), want.data(), nb * 32);
    for (SparseExpandFn fn : fns) {
      if (!fn) continue;
      std::fill(got.begin(), got.end(), 0xAB);
      fn(f, s.data(), got.data(), nb * 32);
      EXPECT_EQ(got, want) << dtype_name(t);
    }
  }
}

void check_equal_dense();

TEST(SparseKernels, EqualDenseKernelsOnPrunedWeights) { check_equal_dense(); }

TEST(SparseKernels, BufferPathEqualsDenseKernelsToo) {
  sparse_set_register_walk(false);
  check_equal_dense();
  sparse_set_register_walk(true);
}

void check_equal_dense() {
  // Shapes: K a few blocks (ragged vs the kernels' 2/4/16-block steps), rows ragged vs 16-row tiles.
  const int64_t Ks[] = {32, 96, 224, 544, 1408, 2048};
  const int64_t rows = 37;
  const int64_t Ts[] = {1, 2, 3, 7, 8, 16, 33, 64};
  for (DType t : {DType::Q8_0_S2_4, DType::Q8_0_S1_4, DType::Q4_0_S2_4, DType::Q4_0_S1_4, DType::Q8_0_S4_16,
                  DType::Q4_0_S2_8, DType::F16_S2_4, DType::F16_S1_4}) {
    const SparseTypeInfo& f = *sparse_type_info(t);
    for (int64_t K : Ks) {
      const Pair p = make_pair(t, rows, K, (uint32_t)K);
      for (Isa isa : isas()) {
        const QuantTraits* st = quant_traits(t, isa);
        const QuantTraits* dt = quant_traits(f.base, isa);
        ASSERT_NE(st, nullptr);
        ASSERT_EQ(st->vec_dot_type, dt->vec_dot_type);
        const QuantTraits* at = quant_traits(dt->vec_dot_type, isa);
        const size_t xrb = dtype_row_bytes(dt->vec_dot_type, K);
        const int64_t Tmax = 64;
        const std::vector<float> xf = normal_data(Tmax * K, 99);
        std::vector<uint8_t> xq(xrb * Tmax);
        for (int64_t tk = 0; tk < Tmax; ++tk) at->from_float(xf.data() + tk * K, xq.data() + tk * xrb, K);
        // vec_dot: sparse == dense, bit for bit.
        std::vector<float> ref((size_t)(rows * Tmax));
        for (int64_t tk = 0; tk < Tmax; ++tk) {
          for (int64_t r = 0; r < rows; ++r) {
            float a = 0, b = 0;
            st->vec_dot(K, &a, p.sparse.data() + r * dtype_row_bytes(t, K), xq.data() + tk * xrb);
            dt->vec_dot(K, &b, p.dense.data() + r * dtype_row_bytes(f.base, K), xq.data() + tk * xrb);
            ASSERT_EQ(std::bit_cast<uint32_t>(a), std::bit_cast<uint32_t>(b))
                << dtype_name(t) << " " << isa_name(isa) << " K=" << K << " r=" << r;
            ref[(size_t)(tk * rows + r)] = a;
          }
        }
        if (st->gemm == nullptr) continue;
        // gemm over any T and any row range == vec_dot (batch invariance) == dense.
        for (int64_t T : Ts) {
          std::vector<float> y((size_t)(rows * T), -1.f);
          st->gemm(K, p.sparse.data(), dtype_row_bytes(t, K), 0, 5, xq.data(), xrb, T, y.data(), rows);
          st->gemm(K, p.sparse.data(), dtype_row_bytes(t, K), 5, rows, xq.data(), xrb, T, y.data(), rows);
          for (int64_t i = 0; i < rows * T; ++i)
            ASSERT_EQ(std::bit_cast<uint32_t>(y[(size_t)i]), std::bit_cast<uint32_t>(ref[(size_t)i]))
                << dtype_name(t) << " " << isa_name(isa) << " K=" << K << " T=" << T << " i=" << i;
        }
      }
    }
  }
}

// The walk for AVX-512 CPUs without VBMI (AVX2 code, AVX-512 float contract) is not what this CPU's table
// picks when it has VBMI, so it is checked directly against the dense AVX-512 kernels.
TEST(SparseKernels, NoVbmiWalkEqualsDenseAvx512) {
  if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512";
  for (DType t : {DType::Q8_0_S2_4, DType::Q8_0_S1_4, DType::Q4_0_S2_4, DType::Q4_0_S1_4}) {
    const SparseTypeInfo& f = *sparse_type_info(t);
    const SparseWalkFn walk = sparse_walk_avx512_novbmi(f);
    ASSERT_NE(walk, nullptr) << dtype_name(t);
    const QuantTraits* dt = quant_traits(f.base, Isa::kAvx512);
    for (int64_t K : {32, 96, 544, 1408, 2048}) {
      const int64_t rows = 9, T = 7;
      const Pair p = make_pair(t, rows, K, (uint32_t)K + 5);
      const size_t xrb = dtype_row_bytes(DType::Q8_0, K), srb = dtype_row_bytes(t, K), drb = dtype_row_bytes(f.base, K);
      const std::vector<float> xf = normal_data(T * K, 17);
      std::vector<uint8_t> xq(xrb * T);
      for (int64_t tk = 0; tk < T; ++tk)
        quant_traits(DType::Q8_0, Isa::kAvx512)->from_float(xf.data() + tk * K, xq.data() + tk * xrb, K);
      for (int64_t cols : {1, 2, 5, 7}) {
        std::vector<float> y((size_t)(rows * cols), -1.f);
        walk(f, K, p.sparse.data(), srb, 0, rows, xq.data(), xrb, cols, y.data(), rows);
        for (int64_t tk = 0; tk < cols; ++tk)
          for (int64_t r = 0; r < rows; ++r) {
            float want = 0;
            dt->vec_dot(K, &want, p.dense.data() + r * drb, xq.data() + tk * xrb);
            ASSERT_EQ(std::bit_cast<uint32_t>(y[(size_t)(tk * rows + r)]), std::bit_cast<uint32_t>(want))
                << dtype_name(t) << " K=" << K << " T=" << cols << " r=" << r << " t=" << tk;
          }
      }
    }
  }
}

TEST(SparseKernels, ScalarEqualsFloatDotOfDequantizedWithinBudget) {
  // The scalar sparse dot vs a double dot of the dequantized weights and activations: the same
  // relative budget as the dense base format (it is the dense kernel on the expanded row).
  for (DType t : {DType::Q8_0_S2_4, DType::Q4_0_S2_4}) {
    const int64_t K = 1024;
    const Pair p = make_pair(t, 1, K, 3);
    const std::vector<float> x = normal_data(K, 4);
    std::vector<uint8_t> xq(dtype_row_bytes(DType::Q8_0, K));
    quant_traits(DType::Q8_0, Isa::kScalar)->from_float(x.data(), xq.data(), K);
    std::vector<float> wd((size_t)K), xd((size_t)K);
    quant_traits(t, Isa::kScalar)->to_float(p.sparse.data(), wd.data(), K);
    quant_traits(DType::Q8_0, Isa::kScalar)->to_float(xq.data(), xd.data(), K);
    double want = 0;
    for (int64_t j = 0; j < K; ++j) want += (double)wd[(size_t)j] * xd[(size_t)j];
    float got = 0;
    quant_traits(t, Isa::kScalar)->vec_dot(K, &got, p.sparse.data(), xq.data());
    EXPECT_NEAR(got, want, 1e-4 * (std::fabs(want) + 1.0)) << dtype_name(t);
  }
}

TEST(SparseFormat, MalformedMaskIsRejected) {
  const SparseTypeInfo& f = *sparse_type_info(DType::Q8_0_S4_8);
  Pair p = make_pair(DType::Q8_0_S4_8, 2, 64, 8);
  ASSERT_TRUE(validate_sparse_rows(f, p.sparse.data(), 64, 2, "x").ok());
  // Row 1, block 1, group 2: eight bits set. Row 1 starts after 2 blocks; its mask plane after 2 d's.
  uint8_t* mask = p.sparse.data() + 2 * f.block_bytes + 2 * 2 + 1 * 4;
  uint32_t m;
  std::memcpy(&m, mask, 4);
  m |= 0xFFu << 16;
  std::memcpy(mask, &m, 4);
  const Status s = validate_sparse_rows(f, p.sparse.data(), 64, 2, "model.gguf: tensor 'w'");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("tensor 'w'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("row 1 block 1 group 2 keeps 8 of 8"), std::string::npos) << s.message();
}

TEST(SparseFormat, MalformedPositionCodeIsRejected) {
  const SparseTypeInfo& f = *sparse_type_info(DType::Q8_0_S2_4);
  Pair p = make_pair(DType::Q8_0_S2_4, 2, 64, 8);
  ASSERT_TRUE(validate_sparse_rows(f, p.sparse.data(), 64, 2, "x").ok());
  // Row 1, block 1, group 2 (bits 6..8 of the block's 3 code bytes): code 7, which 2:4 does not have.
  uint8_t* code = p.sparse.data() + 2 * f.block_bytes + 2 * 2 + 1 * 3;
  code[0] = (uint8_t)(code[0] | 0xC0);
  code[1] = (uint8_t)(code[1] | 0x01);
  const Status s = validate_sparse_rows(f, p.sparse.data(), 64, 2, "model.gguf: tensor 'w'");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("tensor 'w'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("row 1 block 1 group 2 has keep code 7"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace frugal
