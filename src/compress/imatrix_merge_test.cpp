// merge_imatrix (frugal imatrix --in-file): statistics collected over two parts of a text and merged equal
// the statistics of one run over the whole text (dense and MoE models: count-weighted means, counts and
// chunks add, datasets listed), a .dat side (no counts) is weighted by its chunks, and a tensor of another
// shape is refused naming the file.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "compress/imatrix.h"
#include "compress/imatrix_run.h"
#include "model/model.h"

namespace frugal {
namespace {

const std::string kGolden = std::string(FRUGAL_SHARED_DIR) + "/golden/";

StatusOr<Imatrix> run(Model& model, const std::vector<int32_t>& tokens, const std::string& dataset) {
  auto backend = make_ref_backend();
  ImatrixRunOptions o;
  o.n_ctx = 32;
  o.n_batch = 32;
  o.bos = 1;
  o.dataset = dataset;
  return compute_imatrix(model, *backend, tokens, o);
}

void expect_merge_equals_joint_run(const std::string& file) {
  auto model = Model::load(kGolden + file);
  ASSERT_TRUE(model.ok()) << model.status().message();
  std::vector<int32_t> tokens;
  for (int i = 0; i < 96; ++i) tokens.push_back(3 + (i * 37) % 200);
  const std::vector<int32_t> first(tokens.begin(), tokens.begin() + 64), second(tokens.begin() + 64, tokens.end());
  auto joint = run(**model, tokens, "all.txt");
  auto a = run(**model, first, "a.txt");
  auto b = run(**model, second, "b.txt");
  ASSERT_TRUE(joint.ok() && a.ok() && b.ok());
  Imatrix m;
  ASSERT_TRUE(merge_imatrix(&m, *a, "a.gguf").ok());
  ASSERT_TRUE(merge_imatrix(&m, *b, "b.gguf").ok());
  EXPECT_EQ(m.chunks, 3);
  EXPECT_EQ(m.datasets, (std::vector<std::string>{"a.txt", "b.txt"}));
  ASSERT_EQ(m.entries.size(), joint->entries.size());
  for (const auto& [name, want] : joint->entries) {
    const ImatrixEntry* got = m.find(name);
    ASSERT_NE(got, nullptr) << name;
    EXPECT_EQ(got->counts, want.counts) << name;
    EXPECT_EQ(got->ncall, 3) << name;
    ASSERT_EQ(got->values.size(), want.values.size()) << name;
    for (size_t i = 0; i < want.values.size(); ++i)
      ASSERT_NEAR(got->values[i], want.values[i], 2e-6 * std::fabs(want.values[i]) + 1e-12) << name << " " << i;
  }
}

TEST(ImatrixMerge, TwoRunsMergedEqualOneRunOverBoth) { expect_merge_equals_joint_run("llama-gqa-F32.gguf"); }

// Experts that one part never routed to (count 0, value 1.0) take the other part's statistics unchanged.
TEST(ImatrixMerge, MoeTwoRunsMergedEqualOneRunOverBoth) { expect_merge_equals_joint_run("deepseek-moe-F32.gguf"); }

TEST(ImatrixMerge, DatSideIsWeightedByChunksAndShapesMustMatch) {
  Imatrix a, b;
  a.chunks = 3;
  a.chunk_size = 64;
  a.entries["w"] = ImatrixEntry{3, {1.f, 4.f}, {192}};
  a.entries["only_a"] = ImatrixEntry{3, {2.f}, {192}};
  b.chunks = 1;
  b.entries["w"] = ImatrixEntry{1, {5.f, 8.f}, {}};  // from imatrix.dat: means only
  b.entries["only_b"] = ImatrixEntry{1, {7.f}, {}};
  Imatrix m = a;
  ASSERT_TRUE(merge_imatrix(&m, b, "b.dat").ok());
  EXPECT_EQ(m.chunks, 4);
  EXPECT_EQ(m.chunk_size, 64);
  const ImatrixEntry& w = *m.find("w");
  EXPECT_EQ(w.ncall, 4);
  EXPECT_TRUE(w.counts.empty());  // unknown once a side has none
  EXPECT_FLOAT_EQ(w.values[0], (1.f * 3 + 5.f) / 4);
  EXPECT_FLOAT_EQ(w.values[1], (4.f * 3 + 8.f) / 4);
  EXPECT_EQ(m.find("only_a")->values, std::vector<float>{2.f});
  EXPECT_EQ(m.find("only_b")->values, std::vector<float>{7.f});

  Imatrix other;
  other.entries["w"] = ImatrixEntry{1, {1.f, 2.f, 3.f}, {10}};
  Imatrix before = m;
  const Status s = merge_imatrix(&m, other, "other.gguf");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("other.gguf: tensor 'w' has 3 values, the imatrix it is merged into 2"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(m.chunks, before.chunks);  // unchanged on error
  EXPECT_EQ(m.find("w")->values, before.find("w")->values);
}

}  // namespace
}  // namespace frugal
