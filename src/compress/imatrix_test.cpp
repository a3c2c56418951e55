// frugal imatrix on a real model run: every matmul weight gets statistics from every token, the values are
// mean squares of the activations (the attention input is the RMS-normed embedding, so its mean over the
// columns is ~ the squared norm weight), and quantizing with them lowers the activation-weighted error.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "backend/isa.h"
#include "backend/quant.h"
#include "compress/imatrix.h"
#include "compress/imatrix_run.h"
#include "model/model.h"

namespace frugal {
namespace {

const std::string kGolden = std::string(FRUGAL_SHARED_DIR) + "/golden/";

TEST(ImatrixRun, CollectsEveryMatmulWeightAndHelpsQuantization) {
  auto model = Model::load(kGolden + "llama-gqa-F32.gguf");
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto backend = make_ref_backend();
  std::vector<int32_t> tokens;
  for (int i = 0; i < 96; ++i) tokens.push_back(3 + (i * 37) % 500);
  ImatrixRunOptions o;
  o.n_ctx = 32;
  o.n_batch = 16;
  o.bos = 1;
  o.dataset = "synthetic";
  auto m = compute_imatrix(**model, *backend, tokens, o);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->chunks, 3);
  int n_matrices = 0;
  for (const GgufTensorInfo& t : (*model)->gguf().tensors()) {
    if (t.n_dims < 2 || t.name == "token_embd.weight") continue;  // token_embd is a lookup, not a matmul
    ++n_matrices;
    const ImatrixEntry* e = m->find(t.name);
    ASSERT_NE(e, nullptr) << t.name;
    EXPECT_EQ((int64_t)e->values.size(), t.ne[0]) << t.name;
    EXPECT_EQ(e->ncall, 3);
    for (float v : e->values) ASSERT_TRUE(v >= 0 && std::isfinite(v)) << t.name;
  }
  EXPECT_EQ((int)m->entries.size(), n_matrices);
  // Importance-weighted Q4_K of ffn_down: lower error weighted by the collected statistics.
  const GgufTensorInfo* t = (*model)->gguf().tensor("blk.0.ffn_down.weight");
  const std::vector<float>& imp = m->find(t->name)->values;
  const int64_t K = t->ne[0];
  double with = 0, without = 0;
  std::vector<uint8_t> q(dtype_row_bytes(DType::Q4_K, K));
  std::vector<float> back((size_t)K);
  for (int64_t r = 0; r < t->ne[1]; ++r) {
    const float* x = reinterpret_cast<const float*>(t->data) + r * K;
    for (int pass = 0; pass < 2; ++pass) {
      quantize_row_weights_imatrix(DType::Q4_K, x, q.data(), K, pass ? imp.data() : nullptr);
      quant_traits(DType::Q4_K, Isa::kScalar)->to_float(q.data(), back.data(), K);
      double e = 0;
      for (int64_t k = 0; k < K; ++k) e += imp[(size_t)k] * (x[k] - back[(size_t)k]) * (x[k] - back[(size_t)k]);
      (pass ? with : without) += e;
    }
  }
  EXPECT_LT(with, 0.95 * without);
  // Round trip through the file format.
  const std::vector<uint8_t> bytes = imatrix_dat_bytes(*m);
  auto back_m = parse_imatrix_dat(bytes.data(), bytes.size(), "x");
  ASSERT_TRUE(back_m.ok());
  EXPECT_EQ(back_m->datasets, std::vector<std::string>{"synthetic"});
  for (const auto& [name, e] : m->entries) {
    const std::vector<float>& v = back_m->find(name)->values;
    for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], e.values[i], 1e-6f * (1 + e.values[i]));
  }
}

TEST(ImatrixRun, TooFewTokensIsAClearError) {
  auto model = Model::load(kGolden + "llama-gqa-F32.gguf");
  ASSERT_TRUE(model.ok());
  auto backend = make_ref_backend();
  ImatrixRunOptions o;
  o.n_ctx = 64;
  auto m = compute_imatrix(**model, *backend, std::vector<int32_t>(10, 5), o);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("fewer than one chunk of 64"), std::string::npos) << m.status().message();
}

}  // namespace
}  // namespace frugal
