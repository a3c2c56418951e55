// deepseek / deepseek2 on random-weight models from our writer (model/synth.h), covering q_lora_rank
// present/absent, attn_kv_b and split attn_k_b/attn_v_b, dense leading layers 0 and > 0, expert groups
// 1 and > 1, shared experts 0/1/2, softmax and sigmoid+bias gates, YaRN:
//   * whole prefill == token by token == chunked (bit-exact), any thread count, every ISA path;
//   * a flattened multi-sequence batch over a paged cache (block tables) == each sequence alone;
//   * the ISA paths agree with the reference backend; an F16 KV cache stays close to F32;
//   * the MLA cache holds kv_lora_rank + qk_rope values per token and layer; expert counters add up.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "backend/backend.h"
#include "base/thread_pool.h"
#include "model/model.h"
#include "model/moe.h"
#include "model/deepseek_test_models.h"
#include "model/synth.h"
#include "support/temp_path.h"

namespace frugal {
namespace {

double nmse(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double)(a[i] - b[i]) * (a[i] - b[i]);
    den += (double)b[i] * b[i];
  }
  return num / den;
}

class DeepseekConsistency : public ::testing::TestWithParam<DeepseekCase> {
 protected:
  void SetUp() override {
    const DeepseekCase& c = GetParam();
    path_ = test_temp_path("ds-consistency-" + c.name + ".gguf");
    Status s = write_synth_model(c.spec, path_);
    ASSERT_TRUE(s.ok()) << s.message();
    auto m = Model::load(path_);
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(m).value();
  }
  void TearDown() override { std::remove(path_.c_str()); }

  // Logits [T, V] for kDeepseekTokens fed in chunks of `chunk` tokens through one contiguous cache.
  std::vector<float> run(Backend& be, int64_t chunk, DType kv_type = DType::F32, int64_t T = 0) {
    if (T == 0) T = (int64_t)kDeepseekTokens.size();
    const int64_t V = model_->config().n_vocab;
    KvCache kv(model_->config(), 64, kv_type);
    std::vector<float> logits(T * V);
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
      const int64_t n = std::min(chunk, T - t0);
      std::vector<int32_t> pos(n);
      for (int64_t i = 0; i < n; ++i) pos[i] = (int32_t)(t0 + i);
      Status s = model_->forward(be, kv, kDeepseekTokens.data() + t0, pos.data(), n, logits.data() + t0 * V,
                                 LogitsMode::kAll);
      EXPECT_TRUE(s.ok()) << s.message();
    }
    return logits;
  }

  std::string path_;
  std::unique_ptr<Model> model_;
};

TEST_P(DeepseekConsistency, BatchEqualsSequentialAndThreadsDoNotMatter) {
  ThreadPool pool1(1), pool2(2), pool3(3);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (!isa_supported(isa)) continue;
    auto be1 = make_cpu_backend(&pool1, isa);
    auto be2 = make_cpu_backend(&pool2, isa);
    auto be3 = make_cpu_backend(&pool3, isa);
    const std::vector<float> whole = run(*be2, 64);
    EXPECT_EQ(run(*be2, 1), whole) << isa_name(isa) << ": token-by-token differs from whole prefill";
    EXPECT_EQ(run(*be2, 7), whole) << isa_name(isa) << ": chunked prefill differs from whole prefill";
    EXPECT_EQ(run(*be1, 64), whole) << isa_name(isa) << ": 1 thread differs from 2";
    EXPECT_EQ(run(*be3, 5), whole) << isa_name(isa) << ": 3 threads differ from 2";
    for (float x : whole) ASSERT_TRUE(std::isfinite(x));
  }
}

TEST_P(DeepseekConsistency, IsaPathsMatchReferenceAndF16KvIsClose) {
  auto ref = make_ref_backend();
  const std::vector<float> expect = run(*ref, 64);
  ThreadPool pool(2);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (!isa_supported(isa)) continue;
    auto be = make_cpu_backend(&pool, isa);
    EXPECT_LE(nmse(run(*be, 64), expect), GetParam().ref_budget) << isa_name(isa);
  }
  EXPECT_EQ(run(*ref, 3), expect);
  auto be = make_cpu_backend(&pool, detect_isa());
  const double budget = GetParam().ref_budget < 1e-5 ? 1e-4 : 3e-3;
  EXPECT_LE(nmse(run(*be, 64, DType::F16), run(*be, 64, DType::F32)), budget);
}

// Two sequences in one flattened batch over a paged cache (block size 4, scattered blocks), fed in two
// steps with different chunk sizes, give exactly the logits each sequence gets alone in its own cache.
TEST_P(DeepseekConsistency, MultiSequenceBatchEqualsSingleSequences) {
  ThreadPool pool(2);
  auto be = make_cpu_backend(&pool, detect_isa());
  const int64_t V = model_->config().n_vocab;
  const std::vector<int32_t>& toks = kDeepseekTokens;
  const int64_t nA = 12, nB = 9;                 // A = toks[0..12), B = toks[5..14)
  const int32_t* A = toks.data();
  const int32_t* B = toks.data() + 5;
  const std::vector<float> aloneA = run(*be, 64, DType::F32, 14);  // contiguous, covers A's 12 positions
  // B alone: its own tokens from position 0
  std::vector<float> aloneB(nB * V);
  {
    KvCache kv(model_->config(), 64, DType::F32);
    std::vector<int32_t> pos(nB);
    for (int64_t i = 0; i < nB; ++i) pos[i] = (int32_t)i;
    ASSERT_TRUE(model_->forward(*be, kv, B, pos.data(), nB, aloneB.data(), LogitsMode::kAll).ok());
  }
  KvCache pool_kv(model_->config(), 64, DType::F32);  // 16 blocks of 4 rows
  const int shift = 2;
  const std::vector<int32_t> tableA = {7, 2, 12}, tableB = {3, 14, 9};
  auto slot = [&](const std::vector<int32_t>& table, int64_t p) {
    return (int32_t)((table[(size_t)(p >> shift)] << shift) | (p & 3));
  };
  std::vector<float> gotA(nA * V), gotB(nB * V);
  const int64_t stepsA[2] = {5, nA - 5}, stepsB[2] = {3, nB - 3};
  int64_t doneA = 0, doneB = 0;
  for (int step = 0; step < 2; ++step) {
    const int64_t a = stepsA[step], b = stepsB[step], T = a + b;
    std::vector<int32_t> tokens, pos, slots, rows;
    for (int64_t i = 0; i < a; ++i) {
      tokens.push_back(A[doneA + i]);
      pos.push_back((int32_t)(doneA + i));
      slots.push_back(slot(tableA, doneA + i));
    }
    for (int64_t i = 0; i < b; ++i) {
      tokens.push_back(B[doneB + i]);
      pos.push_back((int32_t)(doneB + i));
      slots.push_back(slot(tableB, doneB + i));
    }
    for (int64_t t = 0; t < T; ++t) rows.push_back((int32_t)t);
    BatchSeq seqs[2];
    seqs[0] = {0, a, tableA.data(), shift, doneA + a};
    seqs[1] = {a, b, tableB.data(), shift, doneB + b};
    Batch batch;
    batch.tokens = tokens.data();
    batch.pos = pos.data();
    batch.slots = slots.data();
    batch.T = T;
    batch.seqs = seqs;
    batch.n_seqs = 2;
    batch.logit_rows = rows.data();
    batch.n_logits = T;
    std::vector<float> logits(T * V);
    Status s = model_->forward_batch(*be, pool_kv, batch, logits.data());
    ASSERT_TRUE(s.ok()) << s.message();
    std::copy(logits.begin(), logits.begin() + a * V, gotA.begin() + doneA * V);
    std::copy(logits.begin() + a * V, logits.end(), gotB.begin() + doneB * V);
    doneA += a;
    doneB += b;
  }
  EXPECT_EQ(gotA, std::vector<float>(aloneA.begin(), aloneA.begin() + nA * V));
  EXPECT_EQ(gotB, aloneB);
}

TEST_P(DeepseekConsistency, CacheSizeAndExpertCounters) {
  const ModelConfig& c = model_->config();
  KvCache kv(c, 16, DType::F16);
  const SynthSpec& s = GetParam().spec;
  if (s.arch == "deepseek2") {
    EXPECT_EQ(kv.bytes_per_token(), (size_t)(s.n_layer * (s.kv_lora_rank + s.qk_rope) * 2));
  } else {
    EXPECT_EQ(kv.bytes_per_token(), (size_t)(s.n_layer * 2 * (s.n_embd / s.n_head * s.n_head_kv) * 2));
  }
  const MoeStats* st = model_->moe_stats();
  ASSERT_NE(st, nullptr);
  ThreadPool pool(2);
  auto be = make_cpu_backend(&pool, detect_isa());
  run(*be, 64);
  const int64_t T = (int64_t)kDeepseekTokens.size();
  EXPECT_EQ(st->n_tokens(), (uint64_t)T);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    uint64_t sum = 0;
    for (int64_t e = 0; e < c.moe.n_expert; ++e) sum += st->tokens(l, e);
    EXPECT_EQ(sum, l < s.n_layer_dense_lead ? 0u : (uint64_t)(T * s.n_expert_used)) << "layer " << l;
    EXPECT_EQ(st->is_moe_layer(l), l >= s.n_layer_dense_lead);
  }
  // decode reads n_expert_used of n_expert experts per MoE layer
  EXPECT_LT(model_->weight_bytes(), std::filesystem::file_size(path_));
}

INSTANTIATE_TEST_SUITE_P(Synth, DeepseekConsistency, ::testing::ValuesIn(deepseek_test_cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace frugal
