// Attention kernels (CpuBackend: AVX2 and AVX-512 flash-style) against the scalar reference
// (RefBackend / ops::attention_head): GQA ratios 1/4/8, MQA, MLA latent shapes (V aliasing K), odd head
// dims, F32/F16/Q8_0 K/V, contiguous and paged caches with shuffled blocks, T = 1..512 with position
// offsets, n_kv up to 4096. Then batch invariance: a token's output is bit-identical alone, inside a
// prefill, inside a multi-sequence batch, and at 1 or 2 threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "backend/backend.h"
#include "backend/quant_ref.h"
#include "base/half.h"
#include "base/rng.h"
#include "base/thread_pool.h"

namespace frugal {
namespace {

float uniform(Rng& rng, float a) { return (float)(rng.next_double() * 2.0 - 1.0) * a; }

size_t bytes_of(int64_t width, DType type) {
  if (type == DType::Q8_0) return (size_t)(width / 32) * 34;
  return (size_t)width * (type == DType::F32 ? 4 : 2);
}

void store(const float* src, int64_t n, DType type, uint8_t* dst) {
  if (type == DType::Q8_0) return qref::from_float_q8_0(src, dst, n);
  if (type == DType::F32) return (void)std::memcpy(dst, src, (size_t)n * 4);
  for (int64_t i = 0; i < n; ++i) reinterpret_cast<uint16_t*>(dst)[i] = f32_to_fp16(src[i]);
}

// A K/V store of n_kv positions for one layer, random values, optionally paged (blocks of 16 rows in
// shuffled order, with a few unused blocks) and optionally in MLA latent form (V = first Dh_v columns of K).
struct Cache {
  std::vector<uint8_t> k, v;
  std::vector<int32_t> table;
  KvView view;
};

Cache make_cache(DType type, int64_t n_kv, int64_t Hkv, int64_t dk, int64_t dv, bool paged, bool mla, Rng& rng) {
  Cache c;
  const int shift = 4;
  const int64_t n_blocks = paged ? (n_kv + 15) / 16 + 3 : 0;
  const int64_t rows = paged ? n_blocks * 16 : n_kv;
  const int64_t kw = Hkv * dk, vw = Hkv * dv;
  c.k.resize(bytes_of(kw, type) * (size_t)rows);
  if (!mla) c.v.resize(bytes_of(vw, type) * (size_t)rows);
  std::vector<float> row((size_t)std::max(kw, vw));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < kw; ++i) row[(size_t)i] = uniform(rng, 1.f);
    store(row.data(), kw, type, c.k.data() + bytes_of(kw, type) * (size_t)r);
    if (mla) continue;
    for (int64_t i = 0; i < vw; ++i) row[(size_t)i] = uniform(rng, 1.f);
    store(row.data(), vw, type, c.v.data() + bytes_of(vw, type) * (size_t)r);
  }
  if (paged) {
    c.table.resize((size_t)n_blocks);
    std::iota(c.table.begin(), c.table.end(), 0);
    for (int64_t i = n_blocks - 1; i > 0; --i) std::swap(c.table[(size_t)i], c.table[(size_t)(rng.next_u64() % (uint64_t)(i + 1))]);
  }
  KvView& kv = c.view;
  kv.type = type;
  kv.k = c.k.data();
  kv.k_row_bytes = bytes_of(kw, type);
  kv.v = mla ? c.k.data() : c.v.data();
  kv.v_row_bytes = mla ? kv.k_row_bytes : bytes_of(vw, type);
  kv.n_kv = n_kv;
  kv.block_table = paged ? c.table.data() : nullptr;
  kv.block_shift = paged ? shift : 0;
  return c;
}

struct Case {
  int64_t H, Hkv, dk, dv;
  bool mla;
  DType type;
  int64_t T, offset;  // T tokens at positions offset .. offset + T - 1; n_kv = offset + T
  bool paged;
};

std::vector<Isa> cpu_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

void check_case(const Case& cs, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "H " << cs.H << " Hkv " << cs.Hkv << " dk " << cs.dk << " dv " << cs.dv
                                  << " type " << dtype_name(cs.type) << " T " << cs.T << " offset " << cs.offset
                                  << (cs.paged ? " paged" : "") << (cs.mla ? " mla" : ""));
  Rng rng(seed);
  const int64_t n_kv = cs.offset + cs.T;
  Cache c = make_cache(cs.type, n_kv, cs.Hkv, cs.dk, cs.dv, cs.paged, cs.mla, rng);
  const int64_t q_stride = cs.H * cs.dk + 3;  // a padded row stride
  std::vector<float> q((size_t)(cs.T * q_stride));
  for (float& x : q) x = uniform(rng, 3.f);  // peaky enough that the running max moves between blocks
  std::vector<int32_t> pos((size_t)cs.T);
  for (int64_t t = 0; t < cs.T; ++t) pos[(size_t)t] = (int32_t)(cs.offset + t);
  const AttentionShape s{cs.H, cs.Hkv, cs.dk, cs.dv, 1.f / std::sqrt((float)cs.dk)};
  const size_t n_out = (size_t)(cs.T * cs.H * cs.dv);
  std::vector<float> want(n_out), got(n_out);
  make_ref_backend()->attention(q.data(), q_stride, pos.data(), cs.T, c.view, s, want.data());
  ThreadPool pool(2);
  for (Isa isa : cpu_isas()) {
    SCOPED_TRACE(isa_name(isa));
    std::fill(got.begin(), got.end(), NAN);
    make_cpu_backend(&pool, isa)->attention(q.data(), q_stride, pos.data(), cs.T, c.view, s, got.data());
    // error relative to the largest magnitude of that head's output (outputs are convex mixtures of V rows)
    double worst = 0;
    for (size_t r = 0; r < n_out; r += (size_t)cs.dv) {
      double scale = 1e-6;
      for (size_t i = r; i < r + (size_t)cs.dv; ++i) scale = std::max(scale, std::fabs((double)want[i]));
      for (size_t i = r; i < r + (size_t)cs.dv; ++i) {
        ASSERT_TRUE(std::isfinite(got[i])) << i;
        worst = std::max(worst, std::fabs((double)got[i] - want[i]) / scale);
      }
    }
    EXPECT_LT(worst, 2e-5) << "worst error relative to the head's largest output";

  }
}

TEST(Attention, MatchesReferenceDecodeShapes) {
  uint64_t seed = 1;
  for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
    for (bool paged : {false, true}) {
      check_case({8, 8, 64, 64, false, type, 1, 100, paged}, seed++);     // GQA 1
      check_case({16, 4, 64, 64, false, type, 1, 700, paged}, seed++);    // GQA 4
      check_case({32, 4, 64, 64, false, type, 2, 4094, paged}, seed++);   // GQA 8, n_kv 4096
      check_case({8, 1, 128, 128, false, type, 3, 300, paged}, seed++);   // MQA
      check_case({16, 1, 576, 512, true, type, 1, 200, paged}, seed++);   // MLA (V aliases K)
      check_case({8, 1, 288, 256, true, type, 2, 70, paged}, seed++);     // MLA lite
      check_case({4, 2, 32, 64, false, type, 1, 0, paged}, seed++);       // first token, dk != dv
    }
  }
  for (DType type : {DType::F32, DType::F16}) {  // head dims that are not multiples of 16
    check_case({6, 2, 80, 80, false, type, 2, 45, true}, seed++);
    check_case({3, 3, 7, 13, false, type, 1, 20, false}, seed++);
  }
}

TEST(Attention, MatchesReferencePrefillShapes) {
  uint64_t seed = 100;
  check_case({8, 2, 64, 64, false, DType::F16, 512, 0, true}, seed++);
  check_case({8, 8, 64, 64, false, DType::Q8_0, 512, 0, false}, seed++);
  check_case({8, 1, 64, 64, false, DType::F32, 200, 333, true}, seed++);
  check_case({16, 2, 64, 64, false, DType::F16, 37, 1000, true}, seed++);
  check_case({4, 1, 576, 512, true, DType::F16, 64, 30, true}, seed++);
  check_case({4, 1, 288, 256, true, DType::Q8_0, 40, 9, false}, seed++);
}

// Each token of a multi-sequence batch (a prefill chunk, decodes, a 2-token step) gives the same bits as
// that token alone, on 1 and 2 threads.
TEST(Attention, TokenOutputIndependentOfBatch) {
  struct Shape {
    int64_t H, Hkv, dk, dv;
    bool mla;
    DType type;
  };
  for (const Shape& sh : {Shape{32, 4, 64, 64, false, DType::F16}, Shape{16, 1, 576, 512, true, DType::F16},
                          Shape{8, 8, 64, 64, false, DType::Q8_0}, Shape{6, 2, 80, 80, false, DType::F32}}) {
    SCOPED_TRACE(testing::Message() << "H " << sh.H << " dk " << sh.dk << " " << dtype_name(sh.type));
    Rng rng(7 + (uint64_t)sh.dk);
    const int64_t lens[] = {90, 1, 2, 1};     // tokens per sequence in the batch
    const int64_t offs[] = {10, 300, 64, 0};  // position of each sequence's first token
    std::vector<Cache> caches;
    std::vector<Backend::AttentionSeq> seqs;
    std::vector<int32_t> pos;
    int64_t T = 0;
    for (int i = 0; i < 4; ++i) {
      caches.push_back(make_cache(sh.type, offs[i] + lens[i], sh.Hkv, sh.dk, sh.dv, i % 2 == 0, sh.mla, rng));
      for (int64_t t = 0; t < lens[i]; ++t) pos.push_back((int32_t)(offs[i] + t));
      T += lens[i];
    }
    for (int i = 0, t0 = 0; i < 4; t0 += (int)lens[i], ++i) seqs.push_back({t0, lens[i], caches[(size_t)i].view});
    const int64_t q_stride = sh.H * sh.dk;
    std::vector<float> q((size_t)(T * q_stride));
    for (float& x : q) x = uniform(rng, 3.f);
    const AttentionShape s{sh.H, sh.Hkv, sh.dk, sh.dv, 0.125f};
    const int64_t ow = sh.H * sh.dv;
    for (Isa isa : cpu_isas()) {
      SCOPED_TRACE(isa_name(isa));
      ThreadPool pool2(2), pool1(1);
      std::vector<float> batched((size_t)(T * ow)), alone((size_t)ow);
      make_cpu_backend(&pool2, isa)->attention_multi(q.data(), q_stride, pos.data(), seqs.data(), 4, s, batched.data());
      auto single = make_cpu_backend(&pool1, isa);
      for (const auto& sq : seqs) {
        for (int64_t t = sq.t0; t < sq.t0 + sq.n; t += 7) {  // every 7th token of the prefill, every decode
          KvView kv = sq.kv;
          kv.n_kv = pos[(size_t)t] + 1;  // alone: the cache holds only what the token sees
          single->attention(q.data() + t * q_stride, q_stride, &pos[(size_t)t], 1, kv, s, alone.data());
          ASSERT_EQ(0, std::memcmp(alone.data(), batched.data() + t * ow, (size_t)ow * sizeof(float))) << "token " << t;
        }
      }
    }
  }
}

}  // namespace
}  // namespace frugal
