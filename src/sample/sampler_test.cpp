#include "sample/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace frugal {
namespace {

std::vector<Candidate> make_cands(const std::vector<float>& logits) {
  std::vector<Candidate> c;
  for (size_t i = 0; i < logits.size(); ++i) c.push_back({(int32_t)i, logits[i], 0.f});
  return c;
}

std::vector<int32_t> ids_of(const std::vector<Candidate>& c) {
  std::vector<int32_t> ids;
  for (const Candidate& x : c) ids.push_back(x.id);
  return ids;
}

SamplingParams plain(float temp) {
  SamplingParams p;
  p.temperature = temp;
  p.top_k = 0;
  p.top_p = 1.f;
  p.min_p = 0.f;
  return p;
}

TEST(Rng, SplitMixKnownValue) {
  uint64_t st = 0;
  EXPECT_EQ(splitmix64(&st), 0xe220a8397b1dcdafULL);  // published splitmix64 vector for seed 0
}

TEST(Rng, XoshiroSequenceIsPinned) {
  // Computed independently (Python big-int implementation of splitmix64 + xoshiro256**).
  Rng rng(0x5eed);
  EXPECT_EQ(rng.next_u64(), 0xef33f17055244b74ULL);
  EXPECT_EQ(rng.next_u64(), 0xe1f591112fb5051bULL);
  EXPECT_EQ(rng.next_u64(), 0xd8ab05640214863aULL);
  Rng a(7), b(7), c(8);
  for (int i = 0; i < 100; ++i) {
    const double u = a.next_double();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
    EXPECT_EQ(u, b.next_double());
  }
  EXPECT_NE(Rng(7).next_u64(), c.next_u64());
}

TEST(SamplingStages, Penalties) {
  auto c = make_cands({2.f, -1.f, 0.5f, 3.f});
  std::unordered_map<int32_t, int32_t> counts = {{0, 2}, {1, 1}};
  sampling::apply_penalties(c, counts, /*repeat=*/2.f, /*frequency=*/0.5f, /*presence=*/0.25f);
  EXPECT_FLOAT_EQ(c[0].logit, 2.f / 2.f - (2 * 0.5f + 0.25f));  // positive: divided
  EXPECT_FLOAT_EQ(c[1].logit, -1.f * 2.f - (1 * 0.5f + 0.25f));  // negative: multiplied
  EXPECT_FLOAT_EQ(c[2].logit, 0.5f);
  EXPECT_FLOAT_EQ(c[3].logit, 3.f);
}

TEST(SamplingStages, TopKKeepsLargestWithTiesByLowestId) {
  auto c = make_cands({1.f, 5.f, 3.f, 5.f, 2.f});
  bool sorted = false;
  sampling::top_k(c, 3, &sorted);
  EXPECT_TRUE(sorted);
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1, 3, 2}));

  auto all = make_cands({1.f, 5.f, 3.f});
  sorted = false;
  sampling::top_k(all, 10, &sorted);  // k > n: everything, sorted
  EXPECT_EQ(ids_of(all), (std::vector<int32_t>{1, 2, 0}));

  auto off = make_cands({1.f, 5.f, 3.f});
  sorted = false;
  sampling::top_k(off, 0, &sorted);  // disabled: untouched
  EXPECT_FALSE(sorted);
  EXPECT_EQ(ids_of(off), (std::vector<int32_t>{0, 1, 2}));
}

TEST(SamplingStages, TopP) {
  // probabilities 0.15, 0.5, 0.05, 0.3 (as log-probs)
  const std::vector<float> lp = {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
  auto c = make_cands(lp);
  bool sorted = false;
  sampling::top_p(c, 0.75f, &sorted);  // 0.5 + 0.3 = 0.8 >= 0.75
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1, 3}));
  c = make_cands(lp);
  sorted = false;
  sampling::top_p(c, 0.9f, &sorted);  // 0.5 + 0.3 + 0.15 = 0.95
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1, 3, 0}));
  c = make_cands(lp);
  sorted = false;
  sampling::top_p(c, 0.4f, &sorted);  // the top token alone
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{1}));
  c = make_cands(lp);
  sorted = false;
  sampling::top_p(c, 1.f, &sorted);  // disabled
  EXPECT_EQ(c.size(), 4u);
}

TEST(SamplingStages, TopPLargeNucleusGrowsThePartialSort) {
  // 1000 equal logits: the nucleus for p = 0.4995 is 500 tokens, more than the first 256-wide window.
  auto c = make_cands(std::vector<float>(1000, 0.f));
  bool sorted = false;
  sampling::top_p(c, 0.4995f, &sorted);
  ASSERT_EQ(c.size(), 500u);
  for (size_t i = 0; i < c.size(); ++i) EXPECT_EQ(c[i].id, (int32_t)i);  // ties by lowest id
}

TEST(SamplingStages, MinP) {
  auto c = make_cands({0.f, std::log(0.5f), std::log(0.04f), std::log(0.2f)});
  sampling::min_p(c, 0.1f);  // keep prob >= 0.1 * max_prob: ids 0 (1), 1 (0.5), 3 (0.2)
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{0, 1, 3}));
  sampling::min_p(c, 0.3f);
  EXPECT_EQ(ids_of(c), (std::vector<int32_t>{0, 1}));
  sampling::min_p(c, 0.f);  // disabled
  EXPECT_EQ(c.size(), 2u);
}

TEST(SamplingStages, TemperatureScalesAndZeroKeepsArgmax) {
  auto c = make_cands({1.f, 3.f, 3.f, -2.f});
  sampling::temperature(c, 0.5f);
  EXPECT_FLOAT_EQ(c[0].logit, 2.f);
  EXPECT_FLOAT_EQ(c[3].logit, -4.f);
  sampling::temperature(c, 0.f);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].id, 1);  // tie between 1 and 2 -> lowest id
}

TEST(SamplingStages, SoftmaxAndDraw) {
  auto c = make_cands({0.f, std::log(2.f), std::log(3.f)});  // probs 1/6, 2/6, 3/6
  sampling::softmax(c);
  EXPECT_NEAR(c[0].p, 1.0 / 6, 1e-6);
  EXPECT_NEAR(c[1].p, 2.0 / 6, 1e-6);
  EXPECT_NEAR(c[2].p, 3.0 / 6, 1e-6);
  std::vector<Candidate> d = {{7, 0, 0.2f}, {8, 0, 0.5f}, {9, 0, 0.3f}};
  EXPECT_EQ(sampling::draw(d, 0.0), 0u);
  EXPECT_EQ(sampling::draw(d, 0.1), 0u);
  EXPECT_EQ(sampling::draw(d, 0.21), 1u);
  EXPECT_EQ(sampling::draw(d, 0.69), 1u);
  EXPECT_EQ(sampling::draw(d, 0.71), 2u);
  EXPECT_EQ(sampling::draw(d, 0.999999), 2u);
}

TEST(SamplingStages, ArgmaxTiesLowestId) {
  const float l[] = {1.f, 3.f, 3.f, 2.f};
  EXPECT_EQ(sampling::argmax(l, 4), 1);
}

TEST(Sampler, GreedyIsArgmaxWithLowestIdOnTies) {
  Sampler s(plain(0.f), 4);
  const float l[] = {1.f, 3.f, 3.f, 2.f};
  EXPECT_EQ(s.sample(l), 1);
  SamplingParams p = plain(-1.f);  // negative temperature is greedy too
  Sampler s2(p, 4);
  EXPECT_EQ(s2.sample(l), 1);
}

TEST(Sampler, RepeatPenaltyWindowSlides) {
  SamplingParams p = plain(0.f);
  p.repeat_penalty = 2.f;
  p.penalty_last_n = 2;
  Sampler s(p, 4);
  const float l[] = {10.f, 9.f, 1.f, 0.f};
  EXPECT_EQ(s.sample(l), 0);
  s.accept(0);  // 10 / 2 = 5 < 9
  EXPECT_EQ(s.sample(l), 1);
  s.accept(1);  // window {0, 1}: 5 vs 4.5
  EXPECT_EQ(s.sample(l), 0);
  s.accept(2);  // window {1, 2}: 0 left the window
  EXPECT_EQ(s.sample(l), 0);
  s.accept(3);
  s.accept(3);  // window {3, 3}
  EXPECT_EQ(s.sample(l), 0);
  s.reset();
  EXPECT_EQ(s.sample(l), 0);
}

TEST(Sampler, FrequencyAndPresencePenalties) {
  SamplingParams p = plain(0.f);
  p.frequency_penalty = 1.f;
  p.presence_penalty = 0.5f;
  p.penalty_last_n = -1;  // unbounded
  Sampler s(p, 3);
  const float l[] = {5.f, 3.f, 0.f};
  s.accept(0);  // 5 - 1 - 0.5 = 3.5 > 3
  EXPECT_EQ(s.sample(l), 0);
  s.accept(0);  // 5 - 2 - 0.5 = 2.5 < 3
  EXPECT_EQ(s.sample(l), 1);
  for (int i = 0; i < 100; ++i) s.accept(2);  // unbounded window keeps counting old tokens
  EXPECT_EQ(s.sample(l), 1);
}

TEST(Sampler, SeededDrawsArePinned) {
  // Distribution 0.1/0.2/0.3/0.4 in id order, seed 12345: the uniforms (computed independently in Python)
  // are 0.744 0.130 0.963 0.048 0.555 0.011 0.160 0.296 0.386 0.911 0.782 0.537.
  SamplingParams p = plain(1.f);
  p.seed = 12345;
  Sampler s(p, 4);
  const float l[] = {std::log(0.1f), std::log(0.2f), std::log(0.3f), std::log(0.4f)};
  std::vector<int32_t> got;
  for (int i = 0; i < 12; ++i) got.push_back(s.sample(l));
  EXPECT_EQ(got, (std::vector<int32_t>{3, 1, 3, 0, 2, 0, 1, 1, 2, 3, 3, 2}));
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
  const int64_t V = 1000;
  std::vector<float> l(V);
  for (int64_t i = 0; i < V; ++i) l[i] = (float)std::sin((double)i * 0.37) * 3.f;
  SamplingParams p;  // defaults: top-k 40, top-p 0.95, min-p 0.05, temp 0.8
  p.seed = 99;
  Sampler a(p, V), b(p, V);
  p.seed = 100;
  Sampler c(p, V);
  std::vector<int32_t> ta, tb, tc;
  for (int i = 0; i < 200; ++i) {
    ta.push_back(a.sample(l.data()));
    tb.push_back(b.sample(l.data()));
    tc.push_back(c.sample(l.data()));
  }
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
  a.reset();
  for (int i = 0; i < 200; ++i) EXPECT_EQ(a.sample(l.data()), ta[(size_t)i]);
}

TEST(Sampler, FrequenciesFollowTheDistribution) {
  SamplingParams p = plain(1.f);
  p.seed = 1;
  Sampler s(p, 4);
  const float l[] = {std::log(0.1f), std::log(0.2f), std::log(0.3f), std::log(0.4f)};
  int counts[4] = {0, 0, 0, 0};
  const int n = 20000;
  for (int i = 0; i < n; ++i) counts[s.sample(l)]++;
  EXPECT_NEAR(counts[0] / (double)n, 0.1, 0.015);
  EXPECT_NEAR(counts[1] / (double)n, 0.2, 0.015);
  EXPECT_NEAR(counts[2] / (double)n, 0.3, 0.015);
  EXPECT_NEAR(counts[3] / (double)n, 0.4, 0.015);
}

TEST(Sampler, FullChainRestrictsToSurvivors) {
  // top-k 3 keeps {4, 3, 2}; min-p 0.5 then drops id 2 (prob ratio e^-2 < 0.5): only 3 and 4 are drawn.
  SamplingParams p;
  p.top_k = 3;
  p.top_p = 1.f;
  p.min_p = 0.5f;
  p.temperature = 1.f;
  p.seed = 5;
  Sampler s(p, 5);
  const float l[] = {0.f, 1.f, 2.f, 3.8f, 4.f};
  bool seen[5] = {false, false, false, false, false};
  for (int i = 0; i < 500; ++i) seen[s.sample(l)] = true;
  EXPECT_FALSE(seen[0] || seen[1] || seen[2]);
  EXPECT_TRUE(seen[3] && seen[4]);
  // top-k 1 with a temperature is still deterministic.
  p.top_k = 1;
  Sampler one(p, 5);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(one.sample(l), 4);
}

TEST(SamplingParams, Validate) {
  SamplingParams p;
  EXPECT_TRUE(p.validate().ok());
  p.top_p = 1.5f;
  EXPECT_FALSE(p.validate().ok());
  p = SamplingParams();
  p.repeat_penalty = 0.f;
  EXPECT_FALSE(p.validate().ok());
  p = SamplingParams();
  p.penalty_last_n = -2;
  EXPECT_FALSE(p.validate().ok());
  p = SamplingParams();
  p.temperature = NAN;
  EXPECT_NE(p.validate().message().find("temperature"), std::string::npos);
}

}  // namespace
}  // namespace frugal
