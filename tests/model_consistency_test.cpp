// Model consistency on random-weight models written by our own GGUF writer (model/synth.h), for each
// architecture, GQA and MQA, tied and untied output, several weight types:
//   * whole-prompt prefill == token-by-token decode == chunked prefill (bit-exact: a token's result must
//     not depend on what else is in the batch);
//   * the thread count does not change the result (bit-exact);
//   * every ISA path agrees with the scalar reference backend within the per-type budget;
//   * an F16 KV cache stays close to the F32 one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "backend/backend.h"
#include "base/thread_pool.h"
#include "gguf/gguf_writer.h"
#include "model/model.h"
#include "model/synth.h"
#include "support/temp_path.h"

namespace frugal {
namespace {

struct Case {
  std::string name;
  SynthSpec spec;
  // Max NMSE vs the reference backend: float summation order only (F32/F16/BF16); for quantized types
  // also a Q8 activation rounding that flips when its input moved by an ulp (as in the golden README).
  double ref_budget;
};

Case make_case(std::string name, std::string arch, int n_head_kv, bool tied, std::string type, double budget) {
  SynthSpec s;
  s.arch = arch;
  s.n_embd = 256;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_head_kv = n_head_kv;
  s.n_ff = 512;
  s.n_ctx = 256;
  s.tied_output = tied;
  s.weight_std = 0.0625f;  // 1/sqrt(n_embd): keeps activations O(1) so the test is sensitive
  s.norm_jitter = true;
  s.seed = 7;
  s.weight_type = type;
  s.vocab_from = std::string(FRUGAL_SHARED_DIR) + "/models/stories260K.gguf";
  return {name, s, budget};
}

// gtest prints a parameter in test names/logs; keep it to the case name.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> cases() {
  return {
      make_case("llama_gqa_F32", "llama", 2, false, "F32", 1e-9),
      make_case("llama_mqa_tied_F32", "llama", 1, true, "F32", 1e-9),
      make_case("llama_mha_F16", "llama", 4, false, "F16", 1e-6),
      make_case("llama_gqa_BF16", "llama", 2, false, "BF16", 1e-6),
      make_case("llama_gqa_Q8_0", "llama", 2, false, "Q8_0", 1e-3),
      make_case("llama_mqa_Q4_0", "llama", 1, false, "Q4_0", 1e-3),
      make_case("llama_gqa_Q4_1", "llama", 2, true, "Q4_1", 1e-3),
      make_case("llama_gqa_Q5_0", "llama", 2, false, "Q5_0", 1e-3),
      make_case("llama_gqa_Q5_1", "llama", 2, false, "Q5_1", 1e-3),
      make_case("llama_gqa_Q4_K_M", "llama", 2, false, "Q4_K_M", 1e-3),
      make_case("llama_gqa_Q5_K_M", "llama", 2, false, "Q5_K_M", 1e-3),
      make_case("llama_gqa_Q6_K", "llama", 2, false, "Q6_K", 1e-3),
      make_case("qwen2_gqa_F32", "qwen2", 2, false, "F32", 1e-9),
      make_case("qwen2_mqa_tied_Q8_0", "qwen2", 1, true, "Q8_0", 1e-3),
  };
}

double nmse(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double)(a[i] - b[i]) * (a[i] - b[i]);
    den += (double)b[i] * b[i];
  }
  return num / den;
}

class ConsistencyTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    path_ = test_temp_path("consistency-" + c.name + ".gguf");
    Status s = write_synth_model(c.spec, path_);
    ASSERT_TRUE(s.ok()) << s.message();
    auto m = Model::load(path_);
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(m).value();
    tokens_ = {1, 403, 407, 261, 378, 432, 274, 287, 394, 410, 472, 370, 352, 266, 268, 315, 418, 419, 426, 13};
  }
  void TearDown() override { std::remove(path_.c_str()); }

  // Logits [T, V] for tokens_ fed in chunks of `chunk` tokens.
  std::vector<float> run(Backend& be, int64_t chunk, DType kv_type = DType::F32) {
    const int64_t T = (int64_t)tokens_.size(), V = model_->config().n_vocab;
    KvCache kv(model_->config(), 64, kv_type);
    std::vector<float> logits(T * V);
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
      const int64_t n = std::min(chunk, T - t0);
      std::vector<int32_t> pos(n);
      for (int64_t i = 0; i < n; ++i) pos[i] = (int32_t)(t0 + i);
      Status s = model_->forward(be, kv, tokens_.data() + t0, pos.data(), n, logits.data() + t0 * V, LogitsMode::kAll);
      EXPECT_TRUE(s.ok()) << s.message();
    }
    return logits;
  }

  std::string path_;
  std::unique_ptr<Model> model_;
  std::vector<int32_t> tokens_;
};

TEST_P(ConsistencyTest, BatchEqualsSequentialAndThreadsDoNotMatter) {
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

TEST_P(ConsistencyTest, IsaPathsMatchReference) {
  auto ref = make_ref_backend();
  const std::vector<float> expect = run(*ref, 64);
  ThreadPool pool(2);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (!isa_supported(isa)) continue;
    auto be = make_cpu_backend(&pool, isa);
    EXPECT_LE(nmse(run(*be, 64), expect), GetParam().ref_budget) << isa_name(isa);
  }
  // The reference itself is batch invariant too.
  EXPECT_EQ(run(*ref, 3), expect);
}

// F16 rounding of K/V is amplified by these random nets, more so when it flips a Q8 activation
// rounding downstream (quantized types): budgets measured with 3x-5x margin.
TEST_P(ConsistencyTest, F16KvCacheIsClose) {
  ThreadPool pool(2);
  auto be = make_cpu_backend(&pool, detect_isa());
  const double budget = GetParam().ref_budget < 1e-5 ? 1e-4 : 3e-3;
  EXPECT_LE(nmse(run(*be, 64, DType::F16), run(*be, 64, DType::F32)), budget);
}

// Q8_0 K/V (blocks of 32 with an f16 scale): further from F32 than F16 K/V, and the SIMD attention over
// it must agree with the scalar reference's reading of the same format. Budgets measured with margin.
TEST_P(ConsistencyTest, Q8KvCacheIsCloseAndIsaPathsAgree) {
  ThreadPool pool(2);
  auto be = make_cpu_backend(&pool, detect_isa());
  auto ref = make_ref_backend();
  const std::vector<float> q8 = run(*be, 64, DType::Q8_0);
  const double d_f32 = nmse(q8, run(*be, 64, DType::F32));
  const double d_ref = nmse(q8, run(*ref, 64, DType::Q8_0));
  std::printf("%s: q8_0 KV vs f32 KV nmse %.3g, cpu vs ref on q8_0 KV %.3g\n", GetParam().name.c_str(), d_f32, d_ref);
  EXPECT_LE(d_f32, GetParam().ref_budget < 1e-5 ? 1e-3 : 1e-2);
  EXPECT_LE(d_ref, GetParam().ref_budget < 1e-5 ? 1e-5 : 3e-4);
  EXPECT_EQ(run(*be, 7, DType::Q8_0), q8) << "chunked prefill differs on a q8_0 cache";
}

INSTANTIATE_TEST_SUITE_P(Synth, ConsistencyTest, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// Loading rejects what the architecture cannot run, naming the problem.
TEST(ModelLoad, UnknownArchitectureListsSupported) {
  SynthSpec s = make_case("x", "llama", 2, false, "F32", 0).spec;
  const std::string path = test_temp_path("arch.gguf");
  ASSERT_TRUE(write_synth_model(s, path).ok());
  auto gguf = GgufFile::open(path);
  ASSERT_TRUE(gguf.ok());
  // Rewrite the architecture key by re-serializing every KV and tensor with a writer.
  GgufWriter w;
  w.copy_kvs(**gguf, "");
  w.set_string("general.architecture", "mamba");
  for (const GgufTensorInfo& t : (*gguf)->tensors())
    w.add_tensor(t.name, t.type, {t.ne[0], t.ne[1]}, std::vector<uint8_t>(t.data, t.data + t.nbytes));
  const std::string path2 = path + ".mamba.gguf";
  ASSERT_TRUE(w.write(path2).ok());
  auto m = Model::load(path2);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("architecture 'mamba' is not supported (supported: llama, qwen2, deepseek, deepseek2)"),
            std::string::npos)
      << m.status().message();
  std::remove(path.c_str());
  std::remove(path2.c_str());
}

TEST(ModelLoad, MissingAndMisshapenTensorsAreNamed) {
  SynthSpec s = make_case("x", "llama", 2, false, "F32", 0).spec;
  const std::string path = test_temp_path("missing.gguf");
  ASSERT_TRUE(write_synth_model(s, path).ok());
  auto gguf = GgufFile::open(path);
  ASSERT_TRUE(gguf.ok());
  for (int variant = 0; variant < 2; ++variant) {
    GgufWriter w;
    w.copy_kvs(**gguf, "");
    for (const GgufTensorInfo& t : (*gguf)->tensors()) {
      if (t.name == "blk.1.ffn_up.weight") {
        if (variant == 0) continue;  // drop it
        w.add_tensor(t.name, t.type, {t.ne[0], t.ne[1] / 2}, std::vector<uint8_t>(t.data, t.data + t.nbytes / 2));
        continue;
      }
      w.add_tensor(t.name, t.type, {t.ne[0], t.ne[1]}, std::vector<uint8_t>(t.data, t.data + t.nbytes));
    }
    const std::string p2 = path + ".bad.gguf";
    ASSERT_TRUE(w.write(p2).ok());
    auto m = Model::load(p2);
    ASSERT_FALSE(m.ok());
    const std::string want = variant == 0 ? "required tensor 'blk.1.ffn_up.weight' is missing"
                                          : "tensor 'blk.1.ffn_up.weight' has shape {256, 256}, expected {256, 512}";
    EXPECT_NE(m.status().message().find(want), std::string::npos) << m.status().message();
    std::remove(p2.c_str());
  }
  std::remove(path.c_str());
}

}  // namespace
}  // namespace frugal
