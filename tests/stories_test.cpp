// The real pretrained stories260K model (F32, and llama.cpp's Q8_0 / Q4_0 quantizations of it) must
// produce llama.cpp's greedy continuation of "Once upon a time" (../shared/models/README.md, Reference 1).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "backend/backend.h"
#include "base/thread_pool.h"
#include "model/model.h"

namespace frugal {
namespace {

const std::string kModels = std::string(FRUGAL_SHARED_DIR) + "/models/";

struct Step {
  int32_t id;
  float gap;
};

std::vector<Step> read_greedy(const std::string& path) {
  std::ifstream f(path);
  std::vector<Step> r;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    int step;
    Step s;
    float logit;
    ls >> step >> s.id >> logit >> s.gap;
    r.push_back(s);
  }
  return r;
}

// Greedy ids of `model` after the prompt, one token per forward.
std::vector<int32_t> greedy(Model& m, Backend& be, int n) {
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  KvCache kv(m.config(), 128, DType::F32);
  const int64_t V = m.config().n_vocab;
  std::vector<float> logits(V);
  std::vector<int32_t> pos = {0, 1, 2, 3, 4};
  EXPECT_TRUE(m.forward(be, kv, prompt.data(), pos.data(), 5, logits.data(), LogitsMode::kLast).ok());
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    int32_t next = (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(next);
    int32_t p = (int32_t)(5 + i);
    EXPECT_TRUE(m.forward(be, kv, &next, &p, 1, logits.data(), LogitsMode::kLast).ok());
  }
  return out;
}

class StoriesTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StoriesTest, GreedyMatchesLlamaCpp) {
  const std::string name = GetParam();
  auto model = Model::load(kModels + name + ".gguf");
  ASSERT_TRUE(model.ok()) << model.status().message();
  const std::vector<Step> ref = read_greedy(kModels + name + ".greedy64.txt");
  ASSERT_EQ(ref.size(), 64u);
  ThreadPool pool(2);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (!isa_supported(isa)) continue;
    auto be = make_cpu_backend(&pool, isa);
    const std::vector<int32_t> ids = greedy(**model, *be, 64);
    for (size_t i = 0; i < ids.size(); ++i)
      ASSERT_EQ(ids[i], ref[i].id) << name << " " << isa_name(isa) << ": greedy step " << i << " (llama.cpp gap "
                                   << ref[i].gap << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, StoriesTest, ::testing::Values("stories260K", "stories260K-Q8_0", "stories260K-Q4_0"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace frugal
