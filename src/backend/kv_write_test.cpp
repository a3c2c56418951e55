// Backend::rope_kv_write (fused rope + K/V store) writes exactly the bytes of rope() followed by the
// reference conversion into each token's row, on RefBackend, CpuBackend (every ISA, 2 threads) and the
// Backend default, for F32/F16/Q8_0, GQA heads and the MLA layout (rope on the last columns, no V).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "backend/backend.h"
#include "backend/kv_write.h"
#include "base/rng.h"
#include "base/thread_pool.h"

namespace frugal {
namespace {

// A backend that only has the Backend default rope_kv_write (everything else forwards to the reference).
class DefaultKvWrite final : public Backend {
 public:
  const char* name() const override { return "default"; }
  void matmul(const WeightView& w, const float* x, int64_t T, float* y) override { ref_->matmul(w, x, T, y); }
  void get_rows(const WeightView& w, const int32_t* ids, int64_t T, float* out) override { ref_->get_rows(w, ids, T, out); }
  void rms_norm(const float* x, const float* w, int64_t T, int64_t D, float eps, float* y) override {
    ref_->rms_norm(x, w, T, D, eps, y);
  }
  void rope(float* x, int64_t stride, const int32_t* pos, int64_t T, int64_t H, int64_t Dh, const RopeParams& p) override {
    ref_->rope(x, stride, pos, T, H, Dh, p);
  }
  void attention(const float* q, int64_t qs, const int32_t* pos, int64_t T, const KvView& kv, const AttentionShape& s,
                 float* out) override {
    ref_->attention(q, qs, pos, T, kv, s, out);
  }
  void silu_mul(float* g, const float* u, int64_t n) override { ref_->silu_mul(g, u, n); }
  void add(float* x, const float* y, int64_t n) override { ref_->add(x, y, n); }
  void add_bias(float* x, const float* b, int64_t T, int64_t n) override { ref_->add_bias(x, b, T, n); }

 private:
  std::unique_ptr<Backend> ref_ = make_ref_backend();
};

size_t bytes_of(int64_t width, DType type) {
  if (type == DType::Q8_0) return (size_t)(width / 32) * 34;
  return (size_t)width * (type == DType::F32 ? 4 : 2);
}

struct Layout {
  int64_t kw, vw, rope_col, H, Dh;
  RopeMode mode;
};

void check(const Layout& l, DType type, int64_t T, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "kw " << l.kw << " vw " << l.vw << " " << dtype_name(type) << " T " << T);
  Rng rng(seed);
  const int64_t n_rows = T + 11, k_stride = l.kw + 5, v_stride = l.vw + 2;
  std::vector<float> k((size_t)(T * k_stride)), v((size_t)(T * v_stride));
  for (float& x : k) x = (float)(rng.next_double() * 8 - 4);
  for (float& x : v) x = (float)(rng.next_double() * 8 - 4);
  std::vector<int32_t> pos((size_t)T), rows((size_t)n_rows);
  std::iota(rows.begin(), rows.end(), 0);
  for (int64_t i = n_rows - 1; i > 0; --i) std::swap(rows[(size_t)i], rows[(size_t)(rng.next_u64() % (uint64_t)(i + 1))]);
  for (int64_t t = 0; t < T; ++t) pos[(size_t)t] = (int32_t)(rng.next_u64() % 5000);
  RopeParams p;
  p.mode = l.mode;
  p.n_dims = (int)l.Dh;
  p.freq_base = 10000.f;

  // expected: rope() on a copy of k, then the reference conversion of each row
  const size_t kb = bytes_of(l.kw, type), vb = bytes_of(l.vw, type);
  std::vector<uint8_t> want_k(kb * (size_t)n_rows, 0xAB), want_v(vb * (size_t)n_rows, 0xAB);
  std::vector<float> roped = k;
  make_ref_backend()->rope(roped.data() + l.rope_col, k_stride, pos.data(), T, l.H, l.Dh, p);
  for (int64_t t = 0; t < T; ++t) {
    ops::kv_store_row(roped.data() + t * k_stride, l.kw, type, want_k.data() + kb * (size_t)rows[(size_t)t]);
    if (l.vw > 0) ops::kv_store_row(v.data() + t * v_stride, l.vw, type, want_v.data() + vb * (size_t)rows[(size_t)t]);
  }

  ThreadPool pool(2);
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(make_ref_backend());
  backends.push_back(std::make_unique<DefaultKvWrite>());
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    if (isa_supported(isa)) backends.push_back(make_cpu_backend(&pool, isa));
  for (auto& be : backends) {
    SCOPED_TRACE(be->name());
    std::vector<uint8_t> got_k(want_k.size(), 0xAB), got_v(want_v.size(), 0xAB);
    const std::vector<float> k_before = k;
    KvWriteTarget dst;
    dst.type = type;
    dst.k = got_k.data();
    dst.v = l.vw > 0 ? got_v.data() : nullptr;
    dst.k_row_bytes = kb;
    dst.v_row_bytes = vb;
    dst.k_width = l.kw;
    dst.v_width = l.vw;
    dst.n_rows = n_rows;
    be->rope_kv_write(k.data(), k_stride, v.data(), v_stride, pos.data(), rows.data(), T, l.rope_col, l.H, l.Dh, p, dst);
    EXPECT_EQ(want_k, got_k);
    EXPECT_EQ(want_v, got_v);
    EXPECT_EQ(0, std::memcmp(k_before.data(), k.data(), k.size() * sizeof(float))) << "k was modified";
  }
}

TEST(RopeKvWrite, BitIdenticalToRopeThenStore) {
  uint64_t seed = 1;
  for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
    for (int64_t T : {1, 7, 64}) {
      check({4 * 64, 4 * 64, 0, 4, 64, RopeMode::kNorm}, type, T, seed++);   // llama GQA
      check({2 * 128, 2 * 128, 0, 2, 128, RopeMode::kNeox}, type, T, seed++);
      check({512 + 64, 0, 512, 1, 64, RopeMode::kNorm}, type, T, seed++);    // MLA latent row [c_kv | k_pe]
    }
  }
}

}  // namespace
}  // namespace frugal
