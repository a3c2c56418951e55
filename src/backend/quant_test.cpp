// Scalar formats: half/bf16 conversions, hand-computed dequantization of one block per format, the
// activation quantizers' rounding rules, quantize->dequantize round-trip error budgets, and the scalar
// dot products against a float dot of the dequantized rows.
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/quant.h"
#include "backend/quant_blocks.h"
#include "base/half.h"
#include "gtest/gtest.h"

namespace frugal {
namespace {

__attribute__((target("f16c"))) float f16c_to_f32(uint16_t h) { return _cvtsh_ss(h); }
__attribute__((target("f16c"))) uint16_t f16c_from_f32(float f) { return _cvtss_sh(f, 0); }

std::vector<float> normal_data(int64_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v((size_t)n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<float> dequant(DType type, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> out((size_t)n);
  quant_traits(type, Isa::kScalar)->to_float(q.data(), out.data(), n);
  return out;
}

std::vector<uint8_t> quant(DType type, const std::vector<float>& x) {
  std::vector<uint8_t> q(dtype_row_bytes(type, (int64_t)x.size()));
  quant_traits(type, Isa::kScalar)->from_float(x.data(), q.data(), (int64_t)x.size());
  return q;
}

TEST(Half, AllF16ValuesMatchF16C) {
  if (!isa_supported(Isa::kAvx2)) GTEST_SKIP() << "no F16C";
  for (uint32_t h = 0; h < 65536; ++h) {
    const float a = fp16_to_f32((uint16_t)h), b = f16c_to_f32((uint16_t)h);
    ASSERT_EQ(f32_to_bits(a), f32_to_bits(b)) << "h=" << h;
    ASSERT_EQ(f32_to_fp16(a), f16c_from_f32(a)) << "h=" << h;  // round trip incl. nan payloads
  }
}

TEST(Half, F32SweepMatchesF16C) {
  if (!isa_supported(Isa::kAvx2)) GTEST_SKIP() << "no F16C";
  // Every exponent, mantissas near f16 rounding boundaries (ties, +-1 ulp), plus random bit patterns.
  std::vector<uint32_t> bits;
  for (uint32_t e = 0; e < 256; ++e)
    for (uint32_t m : {0u, 1u, 0xfffu, 0x1000u, 0x1001u, 0x2000u, 0x3000u, 0x5000u, 0x7fffffu, 0x400000u, 0x7fe000u,
                       0x7ff000u, 0x7ff001u, 0x0fffu, 0x17ffu, 0x1800u})
      for (uint32_t s : {0u, 0x80000000u}) bits.push_back(s | (e << 23) | m);
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) bits.push_back(rng());
  for (uint32_t u : bits) {
    const float f = bits_to_f32(u);
    ASSERT_EQ(f32_to_fp16(f), f16c_from_f32(f)) << std::hex << "bits=0x" << u;
  }
}

TEST(Half, Bf16Rounding) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f808000)), 0x3f80);  // tie -> even (down)
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f818000)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f808001)), 0x3f81);  // above tie
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x00008000)), 0x0000);  // subnormal tie, not flushed by rule
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x00018000)), 0x0002);
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x7f800001)), 0x7fc0);  // nan -> quiet
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x7f7fffff)), 0x7f80);  // rounds to inf
  EXPECT_EQ(f32_to_bits(bf16_to_f32(0xc040)), 0xc0400000u);
}

// ---------------------------------------------------------------- hand-computed blocks

TEST(Dequant, LegacyBlocksByHand) {
  {  // Q4_0: d = 0.5; qs[0] = 0x1f -> x0 = (15-8)*0.5, x16 = (1-8)*0.5
    BlockQ4_0 b{};
    b.d = 0x3800;
    for (uint8_t& q : b.qs) q = 0x88;
    b.qs[0] = 0x1F;
    float y[32];
    quant_traits(DType::Q4_0, Isa::kScalar)->to_float(&b, y, 32);
    EXPECT_EQ(y[0], 3.5f);
    EXPECT_EQ(y[16], -3.5f);
    EXPECT_EQ(y[1], 0.f);
  }
  {  // Q4_1: d = 0.5, m = -1; qs[3] = 0xa2 -> x3 = 2*0.5-1 = 0, x19 = 10*0.5-1 = 4
    BlockQ4_1 b{};
    b.d = 0x3800;
    b.m = 0xBC00;
    b.qs[3] = 0xA2;
    float y[32];
    quant_traits(DType::Q4_1, Isa::kScalar)->to_float(&b, y, 32);
    EXPECT_EQ(y[3], 0.f);
    EXPECT_EQ(y[19], 4.f);
    EXPECT_EQ(y[0], -1.f);
  }
  {  // Q5_0: d = 0.25; qh bits 0 and 17; qs[0] = 0x03, qs[1] = 0x20
    BlockQ5_0 b{};
    b.d = 0x3400;
    const uint32_t qh = (1u << 0) | (1u << 17);
    std::memcpy(b.qh, &qh, 4);
    b.qs[0] = 0x03;
    b.qs[1] = 0x20;
    float y[32];
    quant_traits(DType::Q5_0, Isa::kScalar)->to_float(&b, y, 32);
    EXPECT_EQ(y[0], 0.75f);   // (3|16)-16 = 3
    EXPECT_EQ(y[16], -4.f);   // 0-16
    EXPECT_EQ(y[1], -4.f);    // 0-16
    EXPECT_EQ(y[17], 0.5f);   // (2|16)-16 = 2
  }
  {  // Q5_1: d = 2, m = 1; element 20: high nibble of qs[4] = 3, bit 20 set -> 19*2+1
    BlockQ5_1 b{};
    b.d = 0x4000;
    b.m = 0x3C00;
    const uint32_t qh = 1u << 20;
    std::memcpy(b.qh, &qh, 4);
    b.qs[4] = 0x30;
    float y[32];
    quant_traits(DType::Q5_1, Isa::kScalar)->to_float(&b, y, 32);
    EXPECT_EQ(y[20], 39.f);
    EXPECT_EQ(y[4], 1.f);
  }
  {  // Q8_0: d = 2; qs[5] = -3
    BlockQ8_0 b{};
    b.d = 0x4000;
    b.qs[5] = -3;
    float y[32];
    quant_traits(DType::Q8_0, Isa::kScalar)->to_float(&b, y, 32);
    EXPECT_EQ(y[5], -6.f);
    EXPECT_EQ(y[6], 0.f);
  }
}

TEST(Dequant, KQuantBlocksByHand) {
  // Q4_K / Q5_K: d = 1, dmin = 0.5; sub-block 0: sc 2, m 4; sub-block 5: sc 37, m 20.
  BlockQ4_K b4{};
  b4.d = 0x3C00;
  b4.dmin = 0x3800;
  b4.scales[0] = 2;
  b4.scales[4] = 4;
  b4.scales[9] = (uint8_t)(5 | (4 << 4));  // low bits of sc5 (37 = 0b100101) and m5 (20 = 0b010100)
  b4.scales[1] |= 2 << 6;                  // sc5 >> 4
  b4.scales[5] |= 1 << 6;                  // m5 >> 4
  b4.qs[0] = 9;                            // element 0 (chunk 0, low nibble)
  b4.qs[64 + 3] = 0x70;                    // element 163 (chunk 2, high nibble = sub-block 5)
  uint8_t sc, m;
  k_scale_min(5, b4.scales, &sc, &m);
  EXPECT_EQ(sc, 37);
  EXPECT_EQ(m, 20);
  float y[256];
  quant_traits(DType::Q4_K, Isa::kScalar)->to_float(&b4, y, 256);
  EXPECT_EQ(y[0], 2.f * 9 - 0.5f * 4);
  EXPECT_EQ(y[163], 37.f * 7 - 0.5f * 20);

  BlockQ5_K b5{};
  b5.d = b4.d;
  b5.dmin = b4.dmin;
  std::memcpy(b5.scales, b4.scales, 12);
  std::memcpy(b5.qs, b4.qs, 128);
  b5.qh[3] = 1 << 5;  // element 163: chunk 2, high half -> bit 2*2+1
  quant_traits(DType::Q5_K, Isa::kScalar)->to_float(&b5, y, 256);
  EXPECT_EQ(y[163], 37.f * 23 - 0.5f * 20);
  EXPECT_EQ(y[0], 2.f * 9 - 0.5f * 4);

  // Q6_K: d = 0.5 (stored last); element 200 = half 1, l = 8, third quarter: ql[72] high nibble,
  // qh[40] bits 4-5, scale index 12.
  BlockQ6_K b6{};
  b6.d = 0x3800;
  b6.ql[64 + 8] = 0x50;
  b6.qh[32 + 8] = 2 << 4;
  b6.scales[12] = -3;
  quant_traits(DType::Q6_K, Isa::kScalar)->to_float(&b6, y, 256);
  EXPECT_EQ(y[200], 0.5f * -3 * ((5 | (2 << 4)) - 32));
  EXPECT_EQ(y[199], 0.5f * -3 * -32);  // code 0 means -32; scales[12] covers elements 192..207
  EXPECT_EQ(y[0], 0.f);                 // scales[0] = 0
}

TEST(Dequant, IQ4NLBlockByHand) {
  // d = 0.5; qs[0] = 0xF0 -> x0 = K[0] * 0.5 = -63.5, x16 = K[15] * 0.5 = 56.5; qs[7] = 0x98 ->
  // x7 = K[8] * 0.5 = 0.5, x23 = K[9] * 0.5 = 6.5; qs[15] = 0x3C -> x15 = K[12] * 0.5 = 26.5, x31 = K[3] * 0.5.
  BlockIQ4_NL b{};
  b.d = 0x3800;
  for (uint8_t& q : b.qs) q = 0x77;  // K[7] = -10 everywhere else
  b.qs[0] = 0xF0;
  b.qs[7] = 0x98;
  b.qs[15] = 0x3C;
  float y[64];
  const QuantTraits* t = quant_traits(DType::IQ4_NL, Isa::kScalar);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->vec_dot_type, DType::Q8_0);
  t->to_float(&b, y, 32);
  EXPECT_EQ(y[0], -63.5f);
  EXPECT_EQ(y[16], 56.5f);
  EXPECT_EQ(y[7], 0.5f);
  EXPECT_EQ(y[23], 6.5f);
  EXPECT_EQ(y[15], 26.5f);
  EXPECT_EQ(y[31], -32.5f);
  for (int j : {1, 6, 8, 14, 17, 22, 24, 30}) EXPECT_EQ(y[j], -5.f) << j;
  // A second block, d = -2 (fp16 0xC000): code 1 -> -104 * -2 = 208; blocks are independent.
  BlockIQ4_NL two[2] = {b, b};
  two[1].d = 0xC000;
  two[1].qs[3] = 0x21;  // x3 = K[1] * -2, x19 = K[2] * -2
  t->to_float(two, y, 64);
  EXPECT_EQ(y[0], -63.5f);
  EXPECT_EQ(y[32 + 3], 208.f);
  EXPECT_EQ(y[32 + 19], 166.f);
  EXPECT_EQ(y[32 + 0], 254.f);
  EXPECT_EQ(kIQ4NLValues[0], -127);  // the table as in ggml (kvalues_iq4nl)
  EXPECT_EQ(kIQ4NLValues[15], 113);
}

TEST(IQ4NLQuant, ExactlyRepresentableBlockRoundTripsExactly) {
  // x_j = 0.25 * K[c_j] with the codebook's -127 present: the search's t = 0 candidate maps it exactly,
  // and a zero-error fit cannot be beaten, so the bytes are d = 0.25 and the codes c_j.
  std::mt19937 rng(5);
  for (int rep = 0; rep < 20; ++rep) {
    uint8_t c[32];
    float x[32];
    for (int j = 0; j < 32; ++j) c[j] = (uint8_t)(rng() % 16);
    c[rng() % 32] = 0;
    for (int j = 0; j < 32; ++j) x[j] = 0.25f * kIQ4NLValues[c[j]];
    BlockIQ4_NL b;
    quantize_row_weights(DType::IQ4_NL, x, &b, 32);
    EXPECT_EQ(b.d, f32_to_fp16(0.25f));
    for (int j = 0; j < 16; ++j) ASSERT_EQ(b.qs[j], c[j] | (c[j + 16] << 4)) << "rep " << rep << " j " << j;
  }
}

TEST(IQ4NLQuant, ZeroBlockAndNegatedInput) {
  float x[64] = {0};
  BlockIQ4_NL b[2];
  quant_traits(DType::IQ4_NL, Isa::kScalar)->from_float(x, b, 64);
  EXPECT_EQ(b[0].d, 0);
  for (uint8_t q : b[0].qs) EXPECT_EQ(q, 0x88);  // ggml re-codes against 0: nearest value 1 (code 8)
  // Largest magnitude positive: the search maps it onto the long negative end with a negative scale.
  std::vector<float> v = normal_data(32, 9);
  v[4] = 5.f;
  quantize_row_weights(DType::IQ4_NL, v.data(), b, 32);
  EXPECT_LT(fp16_to_f32(b[0].d), 0.f);
  EXPECT_LE(std::fabs(fp16_to_f32(b[0].d) * -127.f - 5.f), 5.f * 0.08f);
}

TEST(IQ4NLQuant, SearchBeatsPlainAbsmaxScale) {
  // Weighted error sum x^2 (x - y)^2 of the search versus coding with the naive d = max/-127, per block.
  const int64_t n = 32 * 256;
  const std::vector<float> x = normal_data(n, 13);
  const std::vector<float> y = dequant(DType::IQ4_NL, quant(DType::IQ4_NL, x), n);
  double err_search = 0, err_naive = 0;
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x.data() + 32 * b;
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(xb[j]) > amax) amax = std::fabs(xb[j]), max = xb[j];
    const float d = max / -127.f;
    for (int j = 0; j < 32; ++j) {
      float best = 0, bd = INFINITY;
      for (int8_t k : kIQ4NLValues)
        if (std::fabs(d * k - xb[j]) < bd) bd = std::fabs(d * k - xb[j]), best = d * k;
      const double w = (double)xb[j] * xb[j];
      err_naive += w * (xb[j] - best) * (xb[j] - best);
      err_search += w * (xb[j] - y[32 * b + j]) * (xb[j] - y[32 * b + j]);
    }
  }
  EXPECT_LT(err_search, 0.9 * err_naive);  // measured 0.85
}

// ---------------------------------------------------------------- activation quantizers

TEST(ActivationQuant, Q8_0RoundsHalfToEvenWithId127OverAmax) {
  float x[32] = {0};
  x[0] = 127.f;  // amax 127 -> id = 1, d = 1
  x[1] = 2.5f;   // tie -> 2 (roundf would give 3)
  x[2] = -3.5f;  // tie -> -4
  x[3] = 0.5f;   // tie -> 0
  BlockQ8_0 b;
  quant_traits(DType::Q8_0, Isa::kScalar)->from_float(x, &b, 32);
  EXPECT_EQ(b.d, f32_to_fp16(1.f));
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.qs[2], -4);
  EXPECT_EQ(b.qs[3], 0);
  // The weight quantizer keeps ggml's roundf.
  quantize_row_weights(DType::Q8_0, x, &b, 32);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -4);
  EXPECT_EQ(b.qs[3], 1);
}

TEST(ActivationQuant, Q8_1StoresScaledSum) {
  std::vector<float> x = normal_data(64, 3);
  std::vector<uint8_t> q = quant(DType::Q8_1, x);
  for (int blk = 0; blk < 2; ++blk) {
    BlockQ8_1 b;
    std::memcpy(&b, q.data() + blk * sizeof(BlockQ8_1), sizeof b);
    int sum = 0;
    for (int8_t v : b.qs) sum += v;
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * blk + j]));
    EXPECT_EQ(b.s, f32_to_fp16(amax / 127.f * (float)sum));
  }
}

TEST(ActivationQuant, Q8_KSignedMaxAndBsums) {
  std::vector<float> x = normal_data(512, 5);
  x[10] = -9.f;  // the largest magnitude is negative: iscale = -127/max > 0
  std::vector<uint8_t> q = quant(DType::Q8_K, x);
  BlockQ8_K b;
  std::memcpy(&b, q.data(), sizeof b);
  EXPECT_FLOAT_EQ(b.d, 1.f / (-127.f / -9.f));
  EXPECT_EQ(b.qs[10], -127);
  for (int g = 0; g < 16; ++g) {
    int s = 0;
    for (int l = 0; l < 16; ++l) s += b.qs[16 * g + l];
    EXPECT_EQ(b.bsums[g], s);
  }
  std::vector<float> zeros(256, 0.f);
  q = quant(DType::Q8_K, zeros);
  for (uint8_t byte : q) EXPECT_EQ(byte, 0);
}

// ---------------------------------------------------------------- round trips

struct RoundTripBudget {
  DType type;
  double max_rel_rmse;  // RMSE of quantize->dequantize / std of the data (N(0,1) rows)
};

// Measured on 16K N(0,1) values and rounded up ~10-20%; a broken layout or scale misses these by 10x.
// IQ4_NL (measured 0.0758) must beat Q4_0 (0.0864) at the same 4.5 bits per weight.
// Q8_0's 5.4e-3 is the format's own floor for Gaussian data (amax of 32 samples ~2.2 sigma, step/sqrt(12)).
constexpr RoundTripBudget kRoundTrip[] = {
    {DType::F16, 3e-4},  {DType::BF16, 2.5e-3}, {DType::Q8_0, 6e-3}, {DType::Q8_1, 6e-3}, {DType::Q8_K, 8e-3},
    {DType::Q4_0, 0.12}, {DType::Q4_1, 0.10},   {DType::Q5_0, 0.06}, {DType::Q5_1, 0.05}, {DType::Q4_K, 0.10},
    {DType::Q5_K, 0.05}, {DType::Q6_K, 0.025}, {DType::IQ4_NL, 0.085},
};

TEST(RoundTrip, RmseWithinBudget) {
  const int64_t n = 16384;
  const std::vector<float> x = normal_data(n, 11);
  for (const RoundTripBudget& rb : kRoundTrip) {
    const std::vector<float> y = dequant(rb.type, quant(rb.type, x), n);
    double se = 0;
    for (int64_t i = 0; i < n; ++i) se += (double)(x[i] - y[i]) * (x[i] - y[i]);
    const double rel = std::sqrt(se / n);
    EXPECT_LT(rel, rb.max_rel_rmse) << dtype_name(rb.type);
    EXPECT_GT(rel, rb.max_rel_rmse / 20) << dtype_name(rb.type) << " suspiciously exact";
  }
}

TEST(RoundTrip, ZeroAndConstantBlocks) {
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q4_K, DType::Q5_K,
                  DType::Q6_K, DType::Q8_K, DType::IQ4_NL}) {
    std::vector<float> x(512, 0.f);
    for (int i = 256; i < 512; ++i) x[i] = 0.75f;
    const std::vector<float> y = dequant(t, quant(t, x), 512);
    for (int i = 0; i < 256; ++i) ASSERT_EQ(y[i], 0.f) << dtype_name(t) << " i=" << i;
    for (int i = 256; i < 512; ++i) ASSERT_NEAR(y[i], 0.75f, 0.75f * 0.02f) << dtype_name(t) << " i=" << i;
  }
}

// ---------------------------------------------------------------- scalar dot products

TEST(ScalarVecDot, MatchesFloatDotOfDequantizedRows) {
  const int64_t n = 1024;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                  DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL}) {
    const QuantTraits* tr = quant_traits(t, Isa::kScalar);
    const std::vector<float> w = normal_data(n, 21), x = normal_data(n, 22);
    const std::vector<uint8_t> wq = quant(t, w), xq = quant(tr->vec_dot_type, x);
    const std::vector<float> wd = dequant(t, wq, n), xd = dequant(tr->vec_dot_type, xq, n);
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      ref += (double)wd[i] * xd[i];
      mag += std::fabs((double)wd[i] * xd[i]);
    }
    if (tr->vec_dot_type == DType::Q8_1) {
      // Q4_1/Q5_1 use the stored s = fp16(d_unrounded * sum q) for the min term, not d_f16 * sum q.
      const size_t wbb = (size_t)dtype_block_bytes(t);
      for (int64_t blk = 0; blk < n / 32; ++blk) {
        BlockQ8_1 b;
        std::memcpy(&b, xq.data() + blk * sizeof(BlockQ8_1), sizeof b);
        uint16_t m;
        std::memcpy(&m, wq.data() + blk * wbb + 2, 2);
        int sum = 0;
        for (int8_t v : b.qs) sum += v;
        ref += (double)fp16_to_f32(m) * ((double)fp16_to_f32(b.s) - (double)fp16_to_f32(b.d) * sum);
      }
    }
    float s = 0;
    tr->vec_dot(n, &s, wq.data(), xq.data());
    EXPECT_NEAR(s, ref, 1e-5 * mag) << dtype_name(t);
  }
}

}  // namespace
}  // namespace frugal
