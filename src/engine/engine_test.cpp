// Engine on the real stories260K model, driven step by step on the test thread (no engine thread) and
// once through its own thread: llama.cpp's greedy ids, batch invariance (alone vs batched, chunked vs
// whole prefill, prefix-cache hits, preemption and recompute), stop strings, cancellation, admission errors.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <map>

#include "base/thread_pool.h"

namespace frugal {
namespace {

const std::string kStories = std::string(FRUGAL_SHARED_DIR) + "/models/stories260K.gguf";
const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378};  // "Once upon a time"
// llama.cpp's first 40 greedy ids after kPrompt (shared/models/README.md, Reference 1).
const std::vector<int32_t> kGreedy40 = {432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396,
                                        267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385,
                                        328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426};

struct Outcome {
  std::string text;
  FinishReason finish = FinishReason::kError;
  RequestUsage usage;
  std::vector<int32_t> ids;  // from logprobs (requested with top_logprobs 0)
  Status error;
};

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = Model::load(kStories);
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(m).value().release();
    auto t = Tokenizer::from_gguf(model_->gguf());
    ASSERT_TRUE(t.ok()) << t.status().message();
    tok_ = std::move(t).value().release();
    pool_ = new ThreadPool(2);
    backend_ = make_cpu_backend(pool_, detect_isa()).release();
  }

  std::unique_ptr<Engine> make(EngineConfig c) {
    auto e = Engine::create(*model_, *tok_, *backend_, c, pool_);
    EXPECT_TRUE(e.ok()) << e.status().message();
    return e.ok() ? std::move(e).value() : nullptr;
  }

  static GenerateRequest greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
    GenerateRequest r;
    r.prompt = std::move(prompt);
    r.sampling.temperature = 0.f;
    r.max_tokens = max_tokens;
    r.top_logprobs = 0;
    return r;
  }

  // Submits all requests, steps the engine until every stream is done, collects the outcomes.
  static std::vector<Outcome> run_all(Engine& e, const std::vector<GenerateRequest>& reqs) {
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (const GenerateRequest& r : reqs) {
      auto s = e.submit(r);
      EXPECT_TRUE(s.ok()) << s.status().message();
      streams.push_back(s.ok() ? s.value() : nullptr);
    }
    std::vector<Outcome> out(reqs.size());
    std::vector<bool> done(reqs.size(), false);
    for (int guard = 0; guard < 100000; ++guard) {
      const bool worked = e.step_for_test();
      bool all = true;
      for (size_t i = 0; i < streams.size(); ++i) {
        GenerationEvent ev;
        while (streams[i] && !done[i] && streams[i]->next(&ev, 0)) {
          out[i].text += ev.text;
          for (const TokenLogprob& lp : ev.logprobs) out[i].ids.push_back(lp.id);
          if (ev.done) {
            done[i] = true;
            out[i].finish = ev.finish;
            out[i].usage = ev.usage;
            out[i].error = ev.error;
          }
        }
        all = all && (done[i] || !streams[i]);
      }
      if (all) break;
      if (!worked) EXPECT_TRUE(worked) << "engine idle with unfinished requests";
    }
    return out;
  }

  static inline Model* model_ = nullptr;
  static inline Tokenizer* tok_ = nullptr;
  static inline ThreadPool* pool_ = nullptr;
  static inline Backend* backend_ = nullptr;
};

EngineConfig small_config() {
  EngineConfig c;
  c.n_ctx = 256;
  c.kv_tokens = 4096;
  c.kv_type = DType::F32;
  c.block_size = 16;
  c.max_seqs = 8;
  c.max_batched_tokens = 256;
  return c;
}

// Distinct prompts of various lengths (token ids inside the vocabulary, starting with BOS).
std::vector<int32_t> prompt_of(int n, int salt) {
  std::vector<int32_t> p = {1};
  for (int i = 1; i < n; ++i) p.push_back(260 + (i * 7 + salt * 13) % 200);
  return p;
}

TEST_F(EngineTest, GreedyMatchesLlamaCpp) {
  auto e = make(small_config());
  const auto out = run_all(*e, {greedy(kPrompt, 40)});
  EXPECT_EQ(out[0].ids, kGreedy40);
  EXPECT_EQ(out[0].finish, FinishReason::kLength);
  EXPECT_EQ(out[0].usage.prompt_tokens, 5);
  EXPECT_EQ(out[0].usage.completion_tokens, 40);
  EXPECT_EQ((int64_t)out[0].usage.itl_s.size(), 39);
  EXPECT_GT(out[0].usage.engine_s, 0.0);
  EXPECT_LE(out[0].usage.engine_s, out[0].usage.e2e_s);
  const EngineStats s = e->stats();
  EXPECT_EQ(s.kv_blocks_free, s.kv_blocks_total);
  EXPECT_EQ(s.generation_tokens, 40);
  EXPECT_EQ(s.requests_finished[(int)FinishReason::kLength], 1);
}

TEST_F(EngineTest, BatchInvariance) {
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 6; ++i) reqs.push_back(greedy(prompt_of(9 + i * 17, i), 24));
  reqs[3].sampling.temperature = 0.9f;  // seeded sampling must be invariant too
  reqs[3].sampling.seed = 1234;
  std::vector<Outcome> ref;
  for (const GenerateRequest& r : reqs) {
    auto e = make(small_config());
    ref.push_back(run_all(*e, {r})[0]);
  }
  struct Variant {
    const char* name;
    int64_t max_batched_tokens;
    int64_t kv_tokens;
  };
  for (const Variant v : {Variant{"batched", 256, 4096}, Variant{"chunked prefill", 7, 4096},
                          Variant{"preemption", 64, 160}}) {
    EngineConfig c = small_config();
    c.max_batched_tokens = v.max_batched_tokens;
    c.kv_tokens = v.kv_tokens;
    c.n_ctx = 144;
    auto e = make(c);
    const auto out = run_all(*e, reqs);
    int64_t preemptions = 0;
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_EQ(out[i].ids, ref[i].ids) << v.name << ": request " << i;
      EXPECT_EQ(out[i].text, ref[i].text) << v.name << ": request " << i;
      EXPECT_EQ(out[i].finish, FinishReason::kLength) << v.name;
      preemptions += out[i].usage.preemptions;
    }
    if (std::string(v.name) == "preemption") EXPECT_GT(preemptions, 0) << "the small pool must force preemption";
    const EngineStats s = e->stats();
    EXPECT_EQ(s.kv_blocks_free, s.kv_blocks_total) << v.name << ": KV blocks leaked";
    EXPECT_EQ(s.running + s.waiting, 0);
  }
}

TEST_F(EngineTest, EngineTimeSharesAddUpToBusyTime) {
  auto e = make(small_config());
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 3; ++i) reqs.push_back(greedy(prompt_of(10 + 20 * i, i), 8 + 4 * i));
  const auto out = run_all(*e, reqs);
  double sum = 0;
  for (const Outcome& o : out) sum += o.usage.engine_s;
  const double busy = e->stats().busy_s;
  EXPECT_GT(sum, 0.0);
  EXPECT_NEAR(sum, busy, 1e-9 + busy * 1e-9) << "every step's time is billed to the requests in it";
}

TEST_F(EngineTest, PrefixCacheHitGivesTheSameTokens) {
  auto e = make(small_config());
  const GenerateRequest r = greedy(prompt_of(70, 5), 16);
  const auto first = run_all(*e, {r})[0];
  const auto second = run_all(*e, {r})[0];
  EXPECT_EQ(first.usage.cached_tokens, 0);
  EXPECT_EQ(second.usage.cached_tokens, 64);  // 4 full blocks of 16 before the last prompt token
  EXPECT_EQ(second.ids, first.ids);
  const EngineStats s = e->stats();
  EXPECT_EQ(s.prefix_cache_hits, 64);
  EXPECT_GE(s.prefix_cache_queries, 140);
  // A different salt (another adapter/tenant) must not share.
  GenerateRequest salted = r;
  salted.cache_salt = 7;
  EXPECT_EQ(run_all(*e, {salted})[0].usage.cached_tokens, 0);
}

TEST_F(EngineTest, StopStringsEndGenerationAndAreNotEmitted) {
  auto e = make(small_config());
  const auto free_run = run_all(*e, {greedy(kPrompt, 40)})[0];
  // Cut at the first occurrence of a 3-byte piece taken from the middle of the free-running text.
  ASSERT_GT(free_run.text.size(), 30u);
  const std::string stop = free_run.text.substr(20, 3);
  GenerateRequest r = greedy(kPrompt, 40);
  r.stop = {stop};
  const auto out = run_all(*e, {r})[0];
  EXPECT_EQ(out.finish, FinishReason::kStop);
  EXPECT_EQ(out.text, free_run.text.substr(0, free_run.text.find(stop)));
}

TEST_F(EngineTest, CancelFreesTheBlocksAtOnce) {
  auto e = make(small_config());
  auto s = e->submit(greedy(prompt_of(40, 1), 100));
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 5; ++i) e->step_for_test();
  EXPECT_LT(e->stats().kv_blocks_free, e->stats().kv_blocks_total);
  s.value()->cancel();
  e->step_for_test();
  EXPECT_EQ(e->stats().kv_blocks_free, e->stats().kv_blocks_total);
  GenerationEvent ev;
  bool done = false;
  while (s.value()->next(&ev, 0)) {
    if (!ev.done) continue;
    done = true;
    EXPECT_EQ(ev.finish, FinishReason::kCancelled);
  }
  EXPECT_TRUE(done);
}

TEST_F(EngineTest, AdmissionErrorsSayWhy) {
  EngineConfig c = small_config();
  c.max_waiting = 2;
  auto e = make(c);
  auto too_long = e->submit(greedy(prompt_of(300, 0), 4));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(too_long.status().message().find("300"), std::string::npos) << too_long.status().message();
  EXPECT_NE(too_long.status().message().find("256"), std::string::npos) << too_long.status().message();
  EXPECT_EQ(e->submit(greedy({}, 4)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e->submit(greedy({1, 99999}, 4)).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(e->submit(greedy(kPrompt, 4)).ok());
  ASSERT_TRUE(e->submit(greedy(kPrompt, 4)).ok());
  EXPECT_EQ(e->submit(greedy(kPrompt, 4)).status().code(), StatusCode::kUnavailable);
  e->drain();
  EXPECT_EQ(e->submit(greedy(kPrompt, 4)).status().code(), StatusCode::kUnavailable);
}

TEST_F(EngineTest, Q8KvCacheNeedsHeadDimsOfBlocks) {
  EngineConfig c = small_config();
  c.kv_type = DType::Q8_0;  // stories260K has head dim 8
  auto e = Engine::create(*model_, *tok_, *backend_, c, pool_);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("multiples of 32"), std::string::npos) << e.status().message();
}

TEST_F(EngineTest, MaxTokensIsClampedToTheContext) {
  EngineConfig c = small_config();
  c.n_ctx = 32;
  auto e = make(c);
  const auto out = run_all(*e, {greedy(prompt_of(20, 2), 1000)})[0];
  EXPECT_EQ(out.finish, FinishReason::kLength);
  EXPECT_EQ(out.usage.completion_tokens, 12);
}

TEST_F(EngineTest, OwnThreadServesConcurrentRequests) {
  auto e = make(small_config());
  e->start();
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(e->submit(greedy(kPrompt, 40)).value());
  for (auto& s : streams) {
    std::vector<int32_t> ids;
    GenerationEvent ev;
    for (;;) {
      ASSERT_TRUE(s->next(&ev, 30000)) << "no event within 30 s";
      for (const TokenLogprob& lp : ev.logprobs) ids.push_back(lp.id);
      if (ev.done) break;
    }
    EXPECT_EQ(ids, kGreedy40);
  }
  e->stop();
}

TEST_F(EngineTest, LogprobsAreNormalizedAndOrdered) {
  auto e = make(small_config());
  GenerateRequest r = greedy(kPrompt, 3);
  r.top_logprobs = 5;
  auto s = e->submit(r).value();
  while (e->step_for_test()) {
  }
  GenerationEvent ev;
  int n = 0;
  while (s->next(&ev, 0)) {
    for (const TokenLogprob& lp : ev.logprobs) {
      ++n;
      ASSERT_EQ(lp.top.size(), 5u);
      EXPECT_EQ(lp.top[0].first, lp.id);  // greedy picks the best
      EXPECT_FLOAT_EQ(lp.top[0].second, lp.logprob);
      EXPECT_LE(lp.logprob, 0.f);
      for (size_t i = 1; i < lp.top.size(); ++i) EXPECT_LE(lp.top[i].second, lp.top[i - 1].second);
    }
  }
  EXPECT_EQ(n, 3);
}

}  // namespace
}  // namespace frugal
