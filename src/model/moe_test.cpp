// MoE routing (hand-computed expectations: gates, ties, bias for selection only, groups, normalization,
// scale) and the grouped expert execution (against a per-token loop, batch invariance, counters).
#include "model/moe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/rng.h"
#include "base/thread_pool.h"

namespace frugal {
namespace {

MoeConfig moe(int64_t E, int64_t K) {
  MoeConfig m;
  m.n_expert = E;
  m.n_expert_used = K;
  return m;
}

struct Routed {
  std::vector<int32_t> ids;
  std::vector<float> w;
};

Routed route(const MoeConfig& m, std::vector<float> logits, const std::vector<float>& bias = {}) {
  Routed r;
  r.ids.assign((size_t)m.n_expert_used, -1);
  r.w.assign((size_t)m.n_expert_used, 0.f);
  std::vector<float> scratch((size_t)(2 * m.n_expert + m.n_group));
  route_token(m, logits.data(), bias.empty() ? nullptr : bias.data(), r.ids.data(), r.w.data(), scratch.data());
  return r;
}

float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

TEST(MoeRouting, SoftmaxTopKWeightsAreProbabilities) {
  // p = softmax(1, 3, 2, 0) = e^l / 31.19287...; top-2 = experts 1 (0.643914) and 2 (0.236883), not renormalized
  Routed r = route(moe(4, 2), {1.f, 3.f, 2.f, 0.f});
  EXPECT_EQ(r.ids, (std::vector<int32_t>{1, 2}));
  const double sum = std::exp(1.0) + std::exp(3.0) + std::exp(2.0) + 1.0;
  EXPECT_NEAR(r.w[0], std::exp(3.0) / sum, 1e-6);
  EXPECT_NEAR(r.w[1], std::exp(2.0) / sum, 1e-6);
  EXPECT_NEAR(r.w[0], 0.643914, 1e-6);
}

TEST(MoeRouting, TiesGoToTheLowerExpertId) {
  Routed r2 = route(moe(5, 2), {2.f, 5.f, 5.f, 1.f, 5.f});
  EXPECT_EQ(r2.ids, (std::vector<int32_t>{1, 2}));
  Routed r3 = route(moe(5, 3), {2.f, 5.f, 5.f, 1.f, 5.f});
  EXPECT_EQ(r3.ids, (std::vector<int32_t>{1, 2, 4}));
  Routed all = route(moe(4, 4), {0.f, 0.f, 0.f, 0.f});
  EXPECT_EQ(all.ids, (std::vector<int32_t>{0, 1, 2, 3}));
  for (float w : all.w) EXPECT_FLOAT_EQ(w, 0.25f);
}

TEST(MoeRouting, BiasSelectsButWeightsStayUnbiased) {
  MoeConfig m = moe(4, 2);
  m.gate_sigmoid = true;
  // p = sigmoid(0, 0, 1, 2) = (0.5, 0.5, 0.731, 0.881); s = p + (1, 0, 0, -1) = (1.5, 0.5, 0.731, -0.119)
  Routed r = route(m, {0.f, 0.f, 1.f, 2.f}, {1.f, 0.f, 0.f, -1.f});
  EXPECT_EQ(r.ids, (std::vector<int32_t>{0, 2}));
  EXPECT_FLOAT_EQ(r.w[0], 0.5f);
  EXPECT_FLOAT_EQ(r.w[1], sigmoid(1.f));
  // without the bias the two largest probabilities win
  Routed nb = route(m, {0.f, 0.f, 1.f, 2.f});
  EXPECT_EQ(nb.ids, (std::vector<int32_t>{3, 2}));
  // normalization divides by the sum of the selected (unbiased) weights, then the scale multiplies
  m.norm_weights = true;
  m.weights_scale = 2.5f;
  Routed ns = route(m, {0.f, 0.f, 1.f, 2.f}, {1.f, 0.f, 0.f, -1.f});
  const float sum = 0.5f + sigmoid(1.f);
  EXPECT_NEAR(ns.w[0], 0.5f / sum * 2.5f, 1e-6);
  EXPECT_NEAR(ns.w[1], sigmoid(1.f) / sum * 2.5f, 1e-6);
  EXPECT_NEAR(ns.w[0] + ns.w[1], 2.5f, 1e-6);
}

TEST(MoeRouting, NormalizationClampsTinySums) {
  MoeConfig m = moe(3, 2);
  m.gate_sigmoid = true;
  m.norm_weights = true;
  Routed r = route(m, {-20.f, -20.f, -30.f});
  EXPECT_EQ(r.ids, (std::vector<int32_t>{0, 1}));
  EXPECT_FLOAT_EQ(r.w[0], sigmoid(-20.f) / 6.103515625e-5f);
}

TEST(MoeRouting, GroupsKeepTheBestGroupsByTopTwoSum) {
  MoeConfig m = moe(8, 3);
  m.gate_sigmoid = true;
  m.n_group = 4;  // groups {0,1} {2,3} {4,5} {6,7}
  m.n_group_used = 2;
  // p = 0.5 everywhere; s = (1.4, 0.5 | 1.0, 1.0 | 1.45, -0.4 | 0.6, 0.6)
  // group scores (top-2 sums) 1.9, 2.0, 1.05, 1.2 -> groups 1 and 0 stay. Expert 4 has the best single
  // score but its group loses (a max-scored group would have won).
  const std::vector<float> bias = {0.9f, 0.f, 0.5f, 0.5f, 0.95f, -0.9f, 0.1f, 0.1f};
  Routed r = route(m, std::vector<float>(8, 0.f), bias);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{0, 2, 3}));
  for (float w : r.w) EXPECT_FLOAT_EQ(w, 0.5f);
  // without groups the best single scores win
  m.n_group = 1;
  Routed flat = route(m, std::vector<float>(8, 0.f), bias);
  EXPECT_EQ(flat.ids, (std::vector<int32_t>{4, 0, 2}));
}

TEST(MoeRouting, GroupTiesKeepTheLowerGroup) {
  MoeConfig m = moe(4, 2);
  m.n_group = 2;
  m.n_group_used = 1;
  m.gate_sigmoid = true;
  Routed r = route(m, {0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f});
  EXPECT_EQ(r.ids, (std::vector<int32_t>{0, 1}));
}

// ---- execution ----

struct F32Matrix {
  std::vector<float> data;
  WeightView view(int64_t K, int64_t N) const {
    WeightView w;
    w.type = DType::F32;
    w.K = K;
    w.N = N;
    w.data = reinterpret_cast<const uint8_t*>(data.data());
    w.row_bytes = (size_t)K * 4;
    return w;
  }
};

F32Matrix random_matrix(Rng& rng, int64_t n, float scale) {
  F32Matrix m;
  m.data.resize((size_t)n);
  for (float& x : m.data) x = (float)(rng.next_double_open0() * 2.0 - 1.0) * scale;
  return m;
}

// y[D] = down(silu(gate f) * up f) for rows [r0, r0+F) of gate/up and [e*D, e*D+D) of down, by hand.
void expert_by_hand(const F32Matrix& gate, const F32Matrix& up, const F32Matrix& down, int64_t D, int64_t F,
                    int64_t e, const float* f, double* y) {
  std::vector<double> h((size_t)F);
  for (int64_t j = 0; j < F; ++j) {
    double g = 0, u = 0;
    for (int64_t i = 0; i < D; ++i) {
      g += (double)gate.data[(size_t)((e * F + j) * D + i)] * f[i];
      u += (double)up.data[(size_t)((e * F + j) * D + i)] * f[i];
    }
    h[(size_t)j] = g / (1.0 + std::exp(-g)) * u;
  }
  for (int64_t d = 0; d < D; ++d) {
    double acc = 0;
    for (int64_t j = 0; j < F; ++j) acc += (double)down.data[(size_t)((e * D + d) * F + j)] * h[(size_t)j];
    y[d] = acc;
  }
}

TEST(MoeFfn, MatchesPerTokenLoopAndIsBatchInvariant) {
  const int64_t D = 32, E = 8, K = 3, F = 16, T = 9;
  ModelConfig c;
  c.n_embd = D;
  c.n_layer = 1;
  c.moe = moe(E, K);
  c.moe.n_ff_exp = F;
  c.moe.n_expert_shared = 1;
  c.moe.gate_sigmoid = true;
  c.moe.norm_weights = true;
  c.moe.weights_scale = 1.5f;
  Rng rng(42);
  F32Matrix router = random_matrix(rng, E * D, 1.f), gate = random_matrix(rng, E * F * D, 0.3f),
            up = random_matrix(rng, E * F * D, 0.3f), down = random_matrix(rng, E * D * F, 0.3f),
            sg = random_matrix(rng, F * D, 0.3f), su = random_matrix(rng, F * D, 0.3f),
            sd = random_matrix(rng, D * F, 0.3f), bias = random_matrix(rng, E, 0.2f), f = random_matrix(rng, T * D, 1.f);
  MoeLayerWeights w;
  w.gate_inp = router.view(D, E);
  w.exp_probs_b = bias.data.data();
  w.gate_exps = gate.view(D, E * F);
  w.up_exps = up.view(D, E * F);
  w.down_exps = down.view(F, E * D);
  w.shared.gate = sg.view(D, F);
  w.shared.up = su.view(D, F);
  w.shared.down = sd.view(F, D);

  ThreadPool pool(2);
  auto be = make_cpu_backend(&pool, detect_isa());
  std::vector<float> x(T * D, 0.25f);
  MoeWorkspace ws;
  MoeStats stats(1, E);
  moe_ffn(*be, c, w, 0, T, f.data.data(), x.data(), ws, &stats);

  uint64_t routed = 0;
  for (int64_t t = 0; t < T; ++t) {
    // by hand: route on the router logits, sum the weighted experts and the shared expert
    std::vector<float> logits((size_t)E);
    for (int64_t e = 0; e < E; ++e) {
      double s = 0;
      for (int64_t i = 0; i < D; ++i) s += (double)router.data[(size_t)(e * D + i)] * f.data[(size_t)(t * D + i)];
      logits[(size_t)e] = (float)s;
    }
    Routed r = route(c.moe, logits, bias.data);
    std::vector<double> want((size_t)D, 0.25), y((size_t)D);
    for (int64_t j = 0; j < K; ++j) {
      expert_by_hand(gate, up, down, D, F, r.ids[(size_t)j], f.data.data() + t * D, y.data());
      for (int64_t d = 0; d < D; ++d) want[(size_t)d] += r.w[(size_t)j] * y[(size_t)d];
    }
    expert_by_hand(sg, su, sd, D, F, 0, f.data.data() + t * D, y.data());
    for (int64_t d = 0; d < D; ++d) want[(size_t)d] += y[(size_t)d];
    for (int64_t d = 0; d < D; ++d) EXPECT_NEAR(x[(size_t)(t * D + d)], want[(size_t)d], 1e-4) << t << " " << d;

    // the same token alone gives bit-identical results
    std::vector<float> alone((size_t)D, 0.25f);
    moe_ffn(*be, c, w, 0, 1, f.data.data() + t * D, alone.data(), ws, nullptr);
    for (int64_t d = 0; d < D; ++d) ASSERT_EQ(alone[(size_t)d], x[(size_t)(t * D + d)]) << t << " " << d;
  }
  for (int64_t e = 0; e < E; ++e) {
    routed += stats.tokens(0, e);
    EXPECT_LE(stats.runs(0, e), 1u);
    EXPECT_EQ(stats.runs(0, e), stats.tokens(0, e) > 0 ? 1u : 0u);
  }
  EXPECT_EQ(routed, (uint64_t)(T * K));
  EXPECT_EQ(stats.n_tokens(), (uint64_t)T);
}

}  // namespace
}  // namespace frugal
