// Generator on the real stories260K model: llama.cpp's greedy continuation, chunked prefill, stop rules.
#include "engine/generator.h"

#include <gtest/gtest.h>

#include "base/thread_pool.h"

namespace frugal {
namespace {

const std::string kStories = std::string(FRUGAL_SHARED_DIR) + "/models/stories260K.gguf";

// The first 40 greedy ids of llama.cpp after "Once upon a time" (shared/models/README.md, Reference 1).
const std::vector<int32_t> kGreedy40 = {432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396,
                                        267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385,
                                        328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426};
const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378};

class GeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = Model::load(kStories);
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(m).value();
    auto t = Tokenizer::from_gguf(model_->gguf());
    ASSERT_TRUE(t.ok()) << t.status().message();
    tok_ = std::move(t).value();
    backend_ = make_cpu_backend(&pool_, detect_isa());
  }

  SamplingParams greedy() const {
    SamplingParams p;
    p.temperature = 0.f;
    return p;
  }

  StatusOr<GenerationResult> generate(int64_t n_ctx, int64_t n_batch, int64_t n_predict, std::string* text,
                                      const std::vector<int32_t>& prompt = kPrompt, int64_t stop_after = -1) {
    KvCache kv(model_->config(), n_ctx, DType::F32);
    Generator gen(*model_, *tok_, *backend_, kv, GeneratorOptions{n_batch});
    Sampler sampler(greedy(), model_->config().n_vocab);
    int64_t calls = 0;
    return gen.generate(prompt, n_predict, sampler, [&](const std::string& s) {
      *text += s;
      return ++calls != stop_after;
    });
  }

  ThreadPool pool_{2};
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Backend> backend_;
};

TEST_F(GeneratorTest, GreedyMatchesLlamaCpp) {
  std::string text;
  auto r = generate(128, 512, 40, &text);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->tokens, kGreedy40);
  EXPECT_EQ(r->stop, StopReason::kMaxTokens);
  EXPECT_EQ(r->n_prompt, 5);
  EXPECT_EQ(text.rfind(", there was a little girl named Lily. She loved to play outside in the park.", 0), 0u) << text;
  EXPECT_EQ(text, tok_->decode(r->tokens, false, /*continuation=*/true));
}

TEST_F(GeneratorTest, ChunkedPrefillGivesTheSameTokens) {
  // A longer prompt (the 45 ids so far) prefilled in chunks of 4 vs in one forward.
  std::vector<int32_t> prompt = kPrompt;
  prompt.insert(prompt.end(), kGreedy40.begin(), kGreedy40.end());
  std::string a, b;
  auto whole = generate(128, 512, 12, &a, prompt);
  auto chunked = generate(128, 4, 12, &b, prompt);
  ASSERT_TRUE(whole.ok() && chunked.ok());
  EXPECT_EQ(whole->tokens, chunked->tokens);
  EXPECT_EQ(a, b);
}

TEST_F(GeneratorTest, StopsWhenTheContextIsFull) {
  std::string text;
  auto r = generate(/*n_ctx=*/10, 512, 100, &text);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // Positions 0..4 hold the prompt; 5..9 take generated tokens 1..5; the 6th is sampled from position 9.
  EXPECT_EQ(r->tokens, std::vector<int32_t>(kGreedy40.begin(), kGreedy40.begin() + 6));
  EXPECT_EQ(r->stop, StopReason::kContextFull);
}

TEST_F(GeneratorTest, CallbackCanStop) {
  std::string text;
  auto r = generate(128, 512, 40, &text, kPrompt, /*stop_after=*/3);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stop, StopReason::kCallback);
  EXPECT_EQ(r->tokens.size(), 3u);
}

TEST_F(GeneratorTest, ZeroTokensRequested) {
  std::string text;
  auto r = generate(128, 512, 0, &text);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->tokens.empty());
  EXPECT_TRUE(text.empty());
}

TEST_F(GeneratorTest, PromptErrors) {
  std::string text;
  auto too_long = generate(/*n_ctx=*/4, 512, 1, &text);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), StatusCode::kOutOfRange);
  auto empty = generate(16, 512, 1, &text, {});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace frugal
