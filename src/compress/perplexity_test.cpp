// Perplexity and KL divergence on the real stories260K model against llama-perplexity's reference values
// (../shared/models/README.md, "Reference 2") and against an independent computation in this file.
#include "compress/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/thread_pool.h"
#include "compress/perplexity_kl.h"
#include "model/synth.h"
#include "tokenizer/tokenizer.h"

namespace frugal {
namespace {

const std::string kModels = std::string(FRUGAL_SHARED_DIR) + "/models/";
const std::string kF32 = kModels + "stories260K.gguf";
const std::string kQ8 = kModels + "stories260K-Q8_0.gguf";
const std::string kQ4 = kModels + "stories260K-Q4_0.gguf";

// llama-perplexity -c 128 -b 128 on ppl_story.txt (F32): running PPL after each chunk, final value and error.
const double kRefRunning[10] = {2.6667, 4.4194, 4.5134, 4.2449, 4.6752, 4.7615, 4.7857, 4.5707, 4.6448, 4.6441};
constexpr double kRefPpl = 4.6441, kRefErr = 0.32834;
constexpr double kRefQ8 = 4.6312, kRefQ4 = 4.9499;

std::unique_ptr<Model> load(const std::string& path) {
  auto m = Model::load(path);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

class PerplexityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load(kF32);
    ASSERT_TRUE(model_);
    auto t = Tokenizer::from_gguf(model_->gguf());
    ASSERT_TRUE(t.ok()) << t.status().message();
    tok_ = std::move(t).value();
    std::ifstream in(kModels + "ppl_story.txt", std::ios::binary);
    ASSERT_TRUE(in) << "missing ppl_story.txt";
    std::stringstream ss;
    ss << in.rdbuf();
    tokens_ = tok_->encode(ss.str(), /*add_special=*/true, /*parse_special=*/false);
    backend_ = make_cpu_backend(&pool_, detect_isa());
    opt_.n_ctx = 128;
    opt_.n_batch = 128;
    opt_.bos = tok_->bos();
  }

  StatusOr<PerplexityResult> ppl(Model& m, const PerplexityOptions& o) {
    return compute_perplexity(m, *backend_, tokens_, o, {});
  }

  ThreadPool pool_{2};
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Backend> backend_;
  std::vector<int32_t> tokens_;
  PerplexityOptions opt_;
};

TEST_F(PerplexityTest, PlanFollowsLlamaCpp) {
  ASSERT_EQ(tokens_.size(), 1340u);  // BOS + 1339, as llama.cpp tokenizes the file
  EXPECT_EQ(tokens_[0], 1);
  auto p = plan_perplexity((int64_t)tokens_.size(), opt_);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->n_chunks, 10);
  EXPECT_EQ(p->first, 64);
  EXPECT_EQ(p->n_scored, 63);
  const std::vector<int32_t> c3 = chunk_tokens(tokens_, *p, opt_, 3);
  ASSERT_EQ(c3.size(), 128u);
  EXPECT_EQ(c3[0], 1);  // BOS replaces the chunk's first token
  EXPECT_EQ(c3[1], tokens_[3 * 128 + 1]);
  EXPECT_EQ(c3[127], tokens_[3 * 128 + 127]);
  opt_.n_chunks = 4;
  EXPECT_EQ(plan_perplexity((int64_t)tokens_.size(), opt_)->n_chunks, 4);
}

TEST_F(PerplexityTest, TooShortTextSaysHowManyTokensAreNeeded) {
  opt_.n_ctx = 1024;
  auto p = plan_perplexity((int64_t)tokens_.size(), opt_);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("has 1340 tokens"), std::string::npos) << p.status().message();
  EXPECT_NE(p.status().message().find("needs at least 2048 tokens"), std::string::npos) << p.status().message();
  EXPECT_FALSE(ppl(*model_, opt_).ok());
}

TEST_F(PerplexityTest, MatchesLlamaPerplexityReference) {
  auto r = ppl(*model_, opt_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->count, 630);
  ASSERT_EQ(r->running_ppl.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_NEAR(r->running_ppl[(size_t)i], kRefRunning[i], 1.5e-4) << "chunk " << i + 1;
  EXPECT_NEAR(r->ppl, kRefPpl, 0.01 * kRefPpl);  // the 1%
  EXPECT_NEAR(r->ppl, kRefPpl, 1.5e-4);         // what we actually achieve: the printed 4 decimals
  EXPECT_NEAR(r->ppl_err, kRefErr, 2e-5);
}

TEST_F(PerplexityTest, BatchSizeDoesNotChangeTheResult) {
  auto a = ppl(*model_, opt_);
  opt_.n_batch = 48;  // three forwards per chunk, the last one partial
  auto b = ppl(*model_, opt_);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->nll.size(), b->nll.size());
  for (size_t i = 0; i < a->nll.size(); ++i) EXPECT_NEAR(a->nll[i], b->nll[i], 1e-6) << i;
}

TEST_F(PerplexityTest, QuantizedFilesOrderAsExpected) {
  auto q8 = load(kQ8), q4 = load(kQ4);
  ASSERT_TRUE(q8 && q4);
  auto f = ppl(*model_, opt_), a = ppl(*q8, opt_), b = ppl(*q4, opt_);
  ASSERT_TRUE(f.ok() && a.ok() && b.ok());
  // Q8_0 is within 1% of F32; Q4_0 is clearly worse than both.
  EXPECT_NEAR(a->ppl, f->ppl, 0.01 * f->ppl);
  EXPECT_GT(b->ppl, f->ppl * 1.03);
  EXPECT_GT(b->ppl, a->ppl * 1.03);
  // llama.cpp's values for the same files (its activation rounding differs: ~0.2%).
  EXPECT_NEAR(a->ppl, kRefQ8, 0.005 * kRefQ8);
  EXPECT_NEAR(b->ppl, kRefQ4, 0.005 * kRefQ4);
}

TEST_F(PerplexityTest, KlOfAModelAgainstItselfIsZero) {
  auto base = base_logits_from_model(*model_, *backend_, *plan_perplexity((int64_t)tokens_.size(), opt_));
  ASSERT_TRUE(base.ok());
  auto k = compute_kl(*model_, *backend_, tokens_, opt_, *base, {});
  ASSERT_TRUE(k.ok()) << k.status().message();
  EXPECT_EQ(k->stats.count, 630);
  EXPECT_NEAR(k->stats.kld.value, 0.0, 1e-12);
  EXPECT_NEAR(k->stats.kld_max, 0.0, 1e-12);
  EXPECT_EQ(k->stats.same_top.value, 1.0);
  EXPECT_EQ(k->stats.dp_rms.value, 0.0);
  EXPECT_NEAR(k->stats.ppl_diff.value, 0.0, 1e-12);
  EXPECT_NEAR(k->stats.ppl_ratio.value, 1.0, 1e-12);
  EXPECT_NEAR(k->stats.ppl.value, kRefPpl, 1.5e-4);
}

// Independent KL of the Q4_0 file against F32: one forward per chunk through Model::forward, softmax in
// long double, KL = sum p * log(p / q), arg-max agreement counted here.
struct Independent {
  long double kld_sum = 0, nll_sum = 0;
  int64_t same = 0, n = 0;
};

Independent independent_kl(Model& q, Model& p, Backend& be, const std::vector<int32_t>& tokens, int32_t bos) {
  const int64_t n_ctx = 128, first = 64, V = q.config().n_vocab;
  Independent r;
  std::vector<float> lq((size_t)(n_ctx * V)), lp((size_t)(n_ctx * V));
  std::vector<int32_t> pos((size_t)n_ctx);
  for (int64_t i = 0; i < n_ctx; ++i) pos[(size_t)i] = (int32_t)i;
  for (int64_t c = 0; c < (int64_t)tokens.size() / n_ctx; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    chunk[0] = bos;
    KvCache kq(q.config(), n_ctx, DType::F32), kp(p.config(), n_ctx, DType::F32);
    EXPECT_TRUE(q.forward(be, kq, chunk.data(), pos.data(), n_ctx, lq.data(), LogitsMode::kAll).ok());
    EXPECT_TRUE(p.forward(be, kp, chunk.data(), pos.data(), n_ctx, lp.data(), LogitsMode::kAll).ok());
    for (int64_t t = first; t < n_ctx - 1; ++t) {
      const float* a = lq.data() + t * V;
      const float* b = lp.data() + t * V;
      std::vector<long double> pq((size_t)V), pp((size_t)V);
      long double sq = 0, sp = 0;
      for (int64_t i = 0; i < V; ++i) {
        pq[(size_t)i] = std::exp((long double)a[i]);
        pp[(size_t)i] = std::exp((long double)b[i]);
        sq += pq[(size_t)i];
        sp += pp[(size_t)i];
      }
      int64_t aq = 0, ap = 0;
      for (int64_t i = 0; i < V; ++i) {
        pq[(size_t)i] /= sq;
        pp[(size_t)i] /= sp;
        r.kld_sum += pp[(size_t)i] * std::log(pp[(size_t)i] / pq[(size_t)i]);
        if (a[i] > a[aq]) aq = i;
        if (b[i] > b[ap]) ap = i;
      }
      r.nll_sum -= std::log(pq[(size_t)chunk[(size_t)t + 1]]);
      r.same += aq == ap;
      ++r.n;
    }
  }
  return r;
}

TEST_F(PerplexityTest, KlOfQ4AgainstF32MatchesAnIndependentComputation) {
  auto q4 = load(kQ4);
  ASSERT_TRUE(q4);
  auto base = base_logits_from_model(*model_, *backend_, *plan_perplexity((int64_t)tokens_.size(), opt_));
  ASSERT_TRUE(base.ok());
  auto k = compute_kl(*q4, *backend_, tokens_, opt_, *base, {});
  ASSERT_TRUE(k.ok()) << k.status().message();
  const Independent ind = independent_kl(*q4, *model_, *backend_, tokens_, tok_->bos());
  ASSERT_EQ(ind.n, 630);
  const double kld = (double)(ind.kld_sum / ind.n);
  EXPECT_GT(k->stats.kld.value, 1e-3);
  EXPECT_NEAR(k->stats.kld.value, kld, 1e-9 + 1e-6 * kld);
  EXPECT_NEAR(k->stats.same_top.value, (double)ind.same / (double)ind.n, 1e-12);
  EXPECT_LT(k->stats.same_top.value, 1.0);
  EXPECT_NEAR(k->stats.ppl.value, std::exp((double)(ind.nll_sum / ind.n)), 1e-9);
  EXPECT_NEAR(k->stats.ppl_base.value, kRefPpl, 1.5e-4);
  EXPECT_NEAR(k->stats.ppl_diff.value, k->stats.ppl.value - k->stats.ppl_base.value, 1e-12);
  EXPECT_GT(k->stats.ppl_ratio.value, 1.0);
  // The ordering of the percentiles.
  EXPECT_LE(k->stats.kld_min, k->stats.kld_median);
  EXPECT_LE(k->stats.kld_median, k->stats.kld_p99);
  EXPECT_LE(k->stats.kld_p99, k->stats.kld_max);
}

TEST_F(PerplexityTest, SavedLogitsGiveTheSameKlAsTheBaseModel) {
  auto plan = plan_perplexity((int64_t)tokens_.size(), opt_);
  ASSERT_TRUE(plan.ok());
  std::vector<int32_t> fed;
  for (int64_t c = 0; c < plan->n_chunks; ++c) {
    auto ch = chunk_tokens(tokens_, *plan, opt_, c);
    fed.insert(fed.end(), ch.begin(), ch.end());
  }
  const std::string path = ::testing::TempDir() + "frugal_ppl_base.logits";
  {
    auto w = LogitsFileWriter::create(path, model_->config().n_vocab, *plan, fed);
    ASSERT_TRUE(w.ok()) << w.status().message();
    auto r = compute_perplexity(*model_, *backend_, tokens_, opt_, {},
                                [&](int64_t, const float* l) { return (*w)->append(l); });
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE((*w)->close().ok());
  }
  auto file = LogitsFileReader::open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_TRUE(check_base_file("q4", model_->config().n_vocab, *plan, fed, path, **file).ok());
  auto q4 = load(kQ4);
  ASSERT_TRUE(q4);
  auto from_file = compute_kl(*q4, *backend_, tokens_, opt_, base_logits_from_file(**file), {});
  auto from_model = compute_kl(*q4, *backend_, tokens_, opt_, *base_logits_from_model(*model_, *backend_, *plan), {});
  ASSERT_TRUE(from_file.ok() && from_model.ok());
  EXPECT_EQ(from_file->stats.kld.value, from_model->stats.kld.value);
  EXPECT_EQ(from_file->stats.same_top.value, from_model->stats.same_top.value);

  // Another context size, another vocabulary, other tokens: refused with a reason.
  PerplexityOptions o64 = opt_;
  o64.n_ctx = 64;
  auto p64 = plan_perplexity((int64_t)tokens_.size(), o64);
  std::vector<int32_t> fed64(fed.begin(), fed.begin() + p64->n_chunks * 64);
  Status s = check_base_file("q4", model_->config().n_vocab, *p64, fed64, path, **file);
  EXPECT_NE(s.message().find("context of 128"), std::string::npos) << s.message();
  s = check_base_file("q4", 1000, *plan, fed, path, **file);
  EXPECT_NE(s.message().find("vocabulary mismatch"), std::string::npos) << s.message();
  fed[5] ^= 1;
  s = check_base_file("q4", model_->config().n_vocab, *plan, fed, path, **file);
  EXPECT_NE(s.message().find("differ"), std::string::npos) << s.message();

  // Truncated / foreign files.
  std::FILE* f = std::fopen(path.c_str(), "r+b");
  ASSERT_TRUE(f);
  std::fputs("GARBAGE!", f);
  std::fclose(f);
  auto bad = LogitsFileReader::open(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not a frugal logits file"), std::string::npos);
  std::remove(path.c_str());
}

TEST_F(PerplexityTest, VocabularyMismatchIsReported) {
  SynthSpec spec;  // synthetic 259-token byte vocabulary
  spec.n_embd = 32;
  spec.n_ff = 64;
  spec.n_threads = 1;
  const std::string path = ::testing::TempDir() + "frugal_ppl_synth.gguf";
  ASSERT_TRUE(write_synth_model(spec, path).ok());
  auto other = load(path);
  ASSERT_TRUE(other);
  Status s = check_base_model("stories.gguf", *model_, "synth.gguf", *other);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("vocabulary mismatch: stories.gguf has 512 tokens, synth.gguf has 259"),
            std::string::npos)
      << s.message();
  EXPECT_TRUE(check_base_model("a", *model_, "b", *model_).ok());
  std::remove(path.c_str());
}

TEST(PerplexityMath, FinishAndPercentiles) {
  PerplexityResult r;
  r.nll = {1.0, 2.0, 3.0};
  finish_perplexity(r);
  EXPECT_NEAR(r.ppl, std::exp(2.0), 1e-12);
  // var = mean(x^2) - mean^2 = 14/3 - 4 = 2/3; err = ppl * sqrt(var / (n - 1)) = ppl * sqrt(1/3)
  EXPECT_NEAR(r.ppl_err, std::exp(2.0) * std::sqrt(1.0 / 3.0), 1e-12);
  const std::vector<double> v = {0, 1, 2, 3, 4};
  EXPECT_EQ(percentile_sorted(v, 0.5), 2.0);
  EXPECT_EQ(percentile_sorted(v, 0.0), 0.0);
  EXPECT_EQ(percentile_sorted(v, 1.0), 4.0);
  EXPECT_NEAR(percentile_sorted(v, 0.1), 0.4, 1e-12);
  // A token the model is sure about and the base is not: KL = sum p log(p/q) by hand.
  const float q[3] = {0.f, 0.f, 0.f};
  const float p[3] = {std::log(0.5f), std::log(0.25f), std::log(0.25f)};
  TokenKl t = token_kl(q, p, 3, 0);
  const double expect = 0.5 * std::log(0.5 / (1.0 / 3)) + 2 * 0.25 * std::log(0.25 / (1.0 / 3));
  EXPECT_NEAR(t.kld, expect, 1e-7);
  EXPECT_NEAR(t.dp, 1.0 / 3 - 0.5, 1e-7);
  EXPECT_TRUE(t.same_top);  // both arg-max at id 0 (ties -> lowest id)
}

}  // namespace
}  // namespace frugal
