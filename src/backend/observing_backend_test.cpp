// ObservingBackend: forwards results unchanged and collects sum of x^2 per input column and row counts,
// per tensor and per slice of a 3-D stack.
#include "backend/observing_backend.h"

#include <gtest/gtest.h>

#include <vector>

#include "base/rng.h"

namespace frugal {
namespace {

WeightView f32_view(const std::vector<float>& w, int64_t K, int64_t N) {
  WeightView v;
  v.type = DType::F32;
  v.K = K;
  v.N = N;
  v.data = reinterpret_cast<const uint8_t*>(w.data());
  v.row_bytes = (size_t)K * sizeof(float);
  return v;
}

TEST(ObservingBackend, ForwardsAndCollectsPerColumnSquares) {
  const int64_t K = 8, N = 5, T = 3;
  Rng rng(1);
  std::vector<float> w((size_t)(K * N)), x((size_t)(K * T));
  for (float& v : w) v = (float)rng.next_double() - 0.5f;
  for (float& v : x) v = (float)rng.next_double() * 2 - 1;
  auto ref = make_ref_backend();
  std::vector<ObservedTensor> ts = {{"blk.0.ffn_up.weight", reinterpret_cast<const uint8_t*>(w.data()),
                                     w.size() * sizeof(float), K, 1}};
  ObservingBackend obs(ref.get(), ts);
  std::vector<float> y1((size_t)(T * N)), y2((size_t)(T * N));
  ref->matmul(f32_view(w, K, N), x.data(), T, y1.data());
  obs.matmul(f32_view(w, K, N), x.data(), T, y2.data());
  EXPECT_EQ(y1, y2);
  obs.matmul(f32_view(w, K, N), x.data(), 1, y2.data());  // first row once more
  const ActivationStats* s = obs.find("blk.0.ffn_up.weight");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->count[0], T + 1);
  EXPECT_EQ(s->n_calls, 2);
  for (int64_t k = 0; k < K; ++k) {
    double e = 0;
    for (int64_t t = 0; t < T; ++t) e += (double)x[(size_t)(t * K + k)] * x[(size_t)(t * K + k)];
    e += (double)x[(size_t)k] * x[(size_t)k];
    EXPECT_DOUBLE_EQ(s->sum_sq[(size_t)k], e) << k;
  }
  EXPECT_EQ(obs.unobserved_calls(), 0);
  std::vector<float> other((size_t)(K * N), 1.f);
  obs.matmul(f32_view(other, K, N), x.data(), 1, y2.data());
  EXPECT_EQ(obs.unobserved_calls(), 1);
  EXPECT_EQ(obs.stats().size(), 1u);
}

// note_input records x for the whole tensor; matmuls with views into a noted tensor (the per-head rows
// absorbed MLA multiplies) are then computed but not recorded.
TEST(ObservingBackend, NotedInputReplacesMatmulsWithTheSameTensor) {
  const int64_t K = 4, N = 6, T = 2;
  std::vector<float> w((size_t)(K * N), 0.25f), x = {1, 2, 3, 4, -1, 0, 1, 2}, y((size_t)(T * N));
  auto ref = make_ref_backend();
  ObservingBackend obs(ref.get(), {{"blk.0.attn_kv_b.weight", reinterpret_cast<const uint8_t*>(w.data()),
                                    w.size() * sizeof(float), K, 1}});
  obs.note_input(f32_view(w, K, N), x.data(), T);
  WeightView rows = f32_view(w, K, 2);  // rows 2..3, as W_vb of one head
  rows.data += 2 * rows.row_bytes;
  obs.matmul(rows, x.data(), 1, y.data());
  EXPECT_FLOAT_EQ(y[0], 0.25f * (1 + 2 + 3 + 4));  // still computed
  const ActivationStats* s = obs.find("blk.0.attn_kv_b.weight");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->count[0], T);
  EXPECT_EQ(s->n_calls, 1);
  EXPECT_DOUBLE_EQ(s->sum_sq[0], 1.0 + 1.0);
  EXPECT_DOUBLE_EQ(s->sum_sq[3], 16.0 + 4.0);
}

TEST(ObservingBackend, ThreeDStackKeepsSlicesApart) {
  const int64_t K = 4, N = 2, E = 3;
  std::vector<float> w((size_t)(K * N * E), 0.5f);
  auto ref = make_ref_backend();
  ObservingBackend obs(ref.get(), {{"blk.1.ffn_up_exps.weight", reinterpret_cast<const uint8_t*>(w.data()),
                                    w.size() * sizeof(float), K, E}});
  const WeightView all = f32_view(w, K, N * E);
  std::vector<float> xa = {1, 2, 3, 4}, xb = {1, 1, 1, 1, 2, 2, 2, 2};
  std::vector<float> ya(N), yb(2 * N);
  WeightView e2 = all;
  e2.data = all.row(2 * N);
  e2.N = N;
  Backend::MatmulJob jobs[2] = {{e2, xa.data(), 1, ya.data()}, {e2, xb.data(), 2, yb.data()}};
  obs.matmul_multi(jobs, 2);
  const ActivationStats* s = obs.find("blk.1.ffn_up_exps.weight");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->count, (std::vector<int64_t>{0, 0, 3}));
  EXPECT_DOUBLE_EQ(s->sum_sq[2 * K + 0], 1 + 1 + 4);
  EXPECT_DOUBLE_EQ(s->sum_sq[2 * K + 3], 16 + 1 + 4);
  EXPECT_DOUBLE_EQ(s->sum_sq[0], 0.0);
  EXPECT_DOUBLE_EQ(s->mean_sq(0, 0), 1.0);  // unused expert
  EXPECT_DOUBLE_EQ(s->mean_sq(2, 3), 21.0 / 3);
  EXPECT_FLOAT_EQ(ya[0], 0.5f * 10);
}

}  // namespace
}  // namespace frugal
