// Golden logits: every model in ../shared/golden/manifest.json (llama, qwen2, deepseek, deepseek2), run by
// frugal in batch mode (whole prompt, one forward) and seq mode (one token per forward through the KV cache), must match
// llama.cpp's logits within the manifest's NMSE tolerance, agree on the argmax wherever llama.cpp's top-2
// gap is >= top1_min_gap, and reproduce the checkable greedy steps (rules in ../shared/golden/README.md).
// KV cache in F32, as the goldens were made.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backend/backend.h"
#include "base/thread_pool.h"
#include "model/model.h"
#include "support/npy.h"

namespace frugal {
namespace {

const std::string kGolden = std::string(FRUGAL_SHARED_DIR) + "/golden/";

struct GoldenCase {
  std::string name;
  nlohmann::json entry;
};

void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.name; }

std::vector<GoldenCase> load_cases() {
  std::ifstream f(kGolden + "manifest.json");
  std::vector<GoldenCase> r;
  if (!f) return r;
  nlohmann::json m = nlohmann::json::parse(f);
  for (auto& e : m) {
    std::string file = e["file"];
    r.push_back({file.substr(0, file.size() - 5), e});
  }
  return r;
}

bool arch_supported(const std::string& arch) {
  for (const auto& a : Model::supported_architectures())
    if (a == arch) return true;
  return false;
}

struct Compare {
  double max_nmse = 0;
  int worst_pos = -1;
  int argmax_checked = 0;
  std::string argmax_error;
};

Compare compare_logits(const std::vector<float>& ours, const testing::NpyArray& gold, float min_gap) {
  Compare c;
  const int64_t T = gold.shape[0], V = gold.shape[1];
  for (int64_t p = 0; p < T; ++p) {
    const float* a = ours.data() + p * V;
    const float* b = gold.data.data() + p * V;
    double num = 0, den = 0;
    for (int64_t v = 0; v < V; ++v) {
      num += (double)(a[v] - b[v]) * (a[v] - b[v]);
      den += (double)b[v] * b[v];
    }
    const double nmse = num / den;
    if (nmse > c.max_nmse) c.max_nmse = nmse, c.worst_pos = (int)p;
    int64_t best = 0, second = -1;
    for (int64_t v = 1; v < V; ++v) {
      if (b[v] > b[best]) second = best, best = v;
      else if (second < 0 || b[v] > b[second]) second = v;
    }
    if (b[best] - b[second] >= min_gap) {
      ++c.argmax_checked;
      const int64_t ours_best = std::max_element(a, a + V) - a;
      if (ours_best != best && c.argmax_error.empty())
        c.argmax_error = "position " + std::to_string(p) + ": argmax " + std::to_string(ours_best) +
                         ", llama.cpp " + std::to_string(best) + " (gap " + std::to_string(b[best] - b[second]) + ")";
    }
  }
  return c;
}

class GoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenTest, MatchesLlamaCpp) {
  const GoldenCase& gc = GetParam();
  const nlohmann::json& e = gc.entry;
  const std::string arch = e["arch"];
  if (!arch_supported(arch)) GTEST_SKIP() << "architecture " << arch << " is not supported";

  auto model = Model::load(kGolden + std::string(e["file"]));
  ASSERT_TRUE(model.ok()) << model.status().message();
  Model& m = **model;
  const int64_t V = m.config().n_vocab;
  std::vector<int32_t> tokens = e["tokens"].get<std::vector<int32_t>>();
  const int64_t T = (int64_t)tokens.size();
  std::vector<int32_t> pos(T);
  for (int64_t t = 0; t < T; ++t) pos[t] = (int32_t)t;
  const double tol = e["nmse_tol"];
  const float min_gap = e["top1_min_gap"];

  testing::NpyArray gold_batch, gold_seq;
  std::string err;
  ASSERT_TRUE(testing::read_npy_f32(kGolden + std::string(e["batch"]), &gold_batch, &err)) << err;
  ASSERT_TRUE(testing::read_npy_f32(kGolden + std::string(e["seq"]), &gold_seq, &err)) << err;
  ASSERT_EQ(gold_batch.shape, (std::vector<int64_t>{T, V}));

  ThreadPool pool(2);
  auto be = make_cpu_backend(&pool, detect_isa());

  // batch mode
  {
    KvCache kv(m.config(), 64, DType::F32);
    std::vector<float> logits(T * V);
    ASSERT_TRUE(m.forward(*be, kv, tokens.data(), pos.data(), T, logits.data(), LogitsMode::kAll).ok());
    Compare c = compare_logits(logits, gold_batch, min_gap);
    EXPECT_LE(c.max_nmse, tol) << gc.name << " batch: worst position " << c.worst_pos;
    EXPECT_TRUE(c.argmax_error.empty()) << gc.name << " batch: " << c.argmax_error;
    RecordProperty("batch_nmse", std::to_string(c.max_nmse));
  }
  // seq mode, then greedy continuation
  KvCache kv(m.config(), 64, DType::F32);
  std::vector<float> logits(T * V);
  for (int64_t t = 0; t < T; ++t)
    ASSERT_TRUE(m.forward(*be, kv, &tokens[t], &pos[t], 1, logits.data() + t * V, LogitsMode::kLast).ok());
  Compare c = compare_logits(logits, gold_seq, min_gap);
  EXPECT_LE(c.max_nmse, tol) << gc.name << " seq: worst position " << c.worst_pos;
  EXPECT_TRUE(c.argmax_error.empty()) << gc.name << " seq: " << c.argmax_error;

  std::ifstream g(kGolden + std::string(e["greedy"]));
  std::string line;
  std::vector<int32_t> expected;
  while (std::getline(g, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    int step, id;
    ls >> step >> id;
    expected.push_back(id);
  }
  const int checkable = e["greedy_steps_checkable"];
  ASSERT_GE((int)expected.size(), checkable);
  std::vector<float> row(V);
  const float* last = logits.data() + (T - 1) * V;
  std::copy(last, last + V, row.begin());
  for (int s = 0; s < checkable; ++s) {
    int32_t next = (int32_t)(std::max_element(row.begin(), row.end()) - row.begin());
    ASSERT_EQ(next, expected[s]) << gc.name << " greedy step " << s;
    int32_t p = (int32_t)(T + s);
    ASSERT_TRUE(m.forward(*be, kv, &next, &p, 1, row.data(), LogitsMode::kLast).ok());
  }
}

// The reference backend (scalar, serial) must meet the same tolerance in batch mode.
TEST_P(GoldenTest, RefBackendBatch) {
  const GoldenCase& gc = GetParam();
  const nlohmann::json& e = gc.entry;
  if (!arch_supported(e["arch"])) GTEST_SKIP() << "architecture not supported yet";
  auto model = Model::load(kGolden + std::string(e["file"]));
  ASSERT_TRUE(model.ok()) << model.status().message();
  Model& m = **model;
  std::vector<int32_t> tokens = e["tokens"].get<std::vector<int32_t>>();
  const int64_t T = (int64_t)tokens.size(), V = m.config().n_vocab;
  std::vector<int32_t> pos(T);
  for (int64_t t = 0; t < T; ++t) pos[t] = (int32_t)t;
  testing::NpyArray gold;
  std::string err;
  ASSERT_TRUE(testing::read_npy_f32(kGolden + std::string(e["batch"]), &gold, &err)) << err;
  auto be = make_ref_backend();
  KvCache kv(m.config(), 64, DType::F32);
  std::vector<float> logits(T * V);
  ASSERT_TRUE(m.forward(*be, kv, tokens.data(), pos.data(), T, logits.data(), LogitsMode::kAll).ok());
  Compare c = compare_logits(logits, gold, e["top1_min_gap"]);
  EXPECT_LE(c.max_nmse, (double)e["nmse_tol"]) << gc.name;
  EXPECT_TRUE(c.argmax_error.empty()) << c.argmax_error;
}

std::string case_name(const ::testing::TestParamInfo<GoldenCase>& info) {
  std::string n = info.param.name;
  for (char& ch : n)
    if (!isalnum((unsigned char)ch)) ch = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Manifest, GoldenTest, ::testing::ValuesIn(load_cases()), case_name);

TEST(GoldenManifest, Present) { EXPECT_GE(load_cases().size(), 22u) << "missing " << kGolden << "manifest.json"; }

}  // namespace
}  // namespace frugal
