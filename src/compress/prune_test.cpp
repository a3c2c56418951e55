// frugal prune (compress/prune.h): the N:M selection rule (magnitude keeps exactly the largest; Wanda
// differs when activation norms differ), and on stories260K: every group of M in the written file
// holds at most N non-zeros, the sparse file's logits equal the --dense-out file's (same ISA: same
// bits, since the sparse kernels run the dense kernel on the expanded rows; budget asserted 1e-5), and
// a sparse tensor with a bad keep mask is rejected at load with a clear error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/quant.h"
#include "base/thread_pool.h"
#include "compress/prune.h"
#include "gguf/gguf_file.h"
#include "model/model.h"
#include "tensor/sparse_nm.h"

namespace frugal {
namespace {

const std::string kStories = std::string(FRUGAL_SHARED_DIR) + "/models/stories260K.gguf";

std::string tmp_path(const std::string& name) {
  return testing::TempDir() + "/prune_test_" + std::to_string(::getpid()) + "_" + name;
}

TEST(PruneSelect, MagnitudeKeepsExactlyTheLargest) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  for (auto [n_keep, m] : {std::pair{2, 4}, {1, 4}, {2, 8}, {4, 16}}) {
    std::vector<float> w(256), imp(256);
    for (float& v : w) v = d(rng);
    w[4] = w[5] = 0.5f;  // a tie inside a group: the lower index wins
    w[6] = w[7] = 0.1f;
    prune_importance(w.data(), nullptr, 256, imp.data());
    std::vector<uint32_t> masks(8);
    nm_keep_masks(imp.data(), 256, n_keep, m, masks.data());
    for (int g = 0; g < 256 / m; ++g) {
      for (int j = 0; j < m; ++j) {
        const int i = g * m + j;
        int larger = 0;
        for (int k = 0; k < m; ++k) {
          const float a = std::fabs(w[(size_t)(g * m + k)]), b = std::fabs(w[(size_t)i]);
          larger += a > b || (a == b && k < j);
        }
        const bool kept = masks[(size_t)(i / 32)] >> (i % 32) & 1;
        ASSERT_EQ(kept, larger < n_keep) << n_keep << ":" << m << " i=" << i;
      }
    }
  }
}

TEST(PruneSelect, WandaDiffersFromMagnitudeWhenNormsDiffer) {
  // Group of 4: |w| = 4, 3, 2, 1. Magnitude keeps 0, 1. Column norms^2 1, 1, 100, 100 make the
  // importances 4, 3, 20, 10: Wanda keeps 2, 3.
  std::vector<float> w(32, 0.01f), col(32, 1.0f), imp(32);
  w[0] = 4;
  w[1] = -3;
  w[2] = 2;
  w[3] = -1;
  col[2] = col[3] = 100;
  uint32_t mag = 0, wanda = 0;
  prune_importance(w.data(), nullptr, 32, imp.data());
  nm_keep_masks(imp.data(), 32, 2, 4, &mag);
  prune_importance(w.data(), col.data(), 32, imp.data());
  nm_keep_masks(imp.data(), 32, 2, 4, &wanda);
  EXPECT_EQ(mag & 0xF, 0x3u);
  EXPECT_EQ(wanda & 0xF, 0xCu);
  EXPECT_EQ(mag >> 4, wanda >> 4);  // equal norms elsewhere: same choice
}

// Non-zero count of every group of m in tensor t (dequantized) is <= n.
void expect_nm(const GgufTensorInfo& t, int n, int m) {
  const QuantTraits* q = quant_traits(t.type, Isa::kScalar);
  ASSERT_NE(q, nullptr) << t.name;
  std::vector<float> row((size_t)t.ne[0]);
  for (int64_t r = 0; r < t.n_rows(); ++r) {
    q->to_float(t.data + r * t.row_bytes(), row.data(), t.ne[0]);
    for (int64_t g = 0; g < t.ne[0] / m; ++g) {
      int nz = 0;
      for (int j = 0; j < m; ++j) nz += row[(size_t)(g * m + j)] != 0.f;
      ASSERT_LE(nz, n) << t.name << " row " << r << " group " << g;
    }
  }
}

std::vector<float> logits_of(const std::string& path) {
  auto m = Model::load(path);
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok()) return {};
  ThreadPool pool(2);
  std::unique_ptr<Backend> be = make_cpu_backend(&pool, detect_isa());
  const std::vector<int32_t> toks = {1, 403, 407, 261, 378, 300, 17, 99};
  std::vector<int32_t> pos(toks.size());
  for (size_t i = 0; i < pos.size(); ++i) pos[i] = (int32_t)i;
  KvCache kv((*m)->config(), 64, DType::F32);
  std::vector<float> logits(toks.size() * (size_t)(*m)->config().n_vocab);
  EXPECT_TRUE((*m)->forward(*be, kv, toks.data(), pos.data(), (int64_t)toks.size(), logits.data(), LogitsMode::kAll).ok());
  return logits;
}

TEST(PruneFile, StoriesSparseEqualsDenseOut) {
  for (DType base : {DType::Q8_0, DType::Q4_0, DType::F16}) {
    for (auto [n, m] : {std::pair{2, 4}, {1, 4}}) {
      PruneOptions o;
      o.n = n;
      o.m = m;
      o.type = base;
      o.threads = 2;
      const std::string sp = tmp_path("sparse.gguf"), dn = tmp_path("dense.gguf");
      PruneReport rs, rd;
      ASSERT_TRUE(prune_gguf(kStories, sp, o, &rs).ok());
      o.dense_out = true;
      ASSERT_TRUE(prune_gguf(kStories, dn, o, &rd).ok());
      auto fs = GgufFile::open(sp);
      auto fd = GgufFile::open(dn);
      ASSERT_TRUE(fs.ok() && fd.ok());
      int pruned = 0;
      for (const GgufTensorInfo& t : (*fs)->tensors()) {
        const GgufTensorInfo* d = (*fd)->tensor(t.name);
        ASSERT_NE(d, nullptr);
        EXPECT_FALSE(is_sparse_type(d->type)) << d->name;
        if (!is_sparse_type(t.type)) continue;
        ++pruned;
        const SparseTypeInfo& f = *sparse_type_info(t.type);
        EXPECT_EQ(f.base, base);
        EXPECT_EQ(d->type, base);
        EXPECT_LT(t.nbytes, d->nbytes);
        expect_nm(t, n, m);
        expect_nm(*d, n, m);
        // The expansion of the sparse tensor is the dense-out tensor, byte for byte.
        std::vector<uint8_t> ex(d->nbytes);
        const int64_t rows = t.n_elements() / t.ne[0];
        for (int64_t r = 0; r < rows; ++r)
          sparse_expand_row(f, t.data + (size_t)r * t.row_bytes(), ex.data() + (size_t)r * d->row_bytes(), t.ne[0]);
        EXPECT_TRUE(std::equal(ex.begin(), ex.end(), d->data)) << t.name;
      }
      EXPECT_EQ(pruned, 5 * 6) << "attn q/k/v/output + ffn gate/up of 5 layers (ffn_down's rows of 172 are not "
                                  "whole blocks)";
      const std::vector<float> ls = logits_of(sp), ld = logits_of(dn);
      ASSERT_EQ(ls.size(), ld.size());
      ASSERT_FALSE(ls.empty());
      double maxd = 0;
      for (size_t i = 0; i < ls.size(); ++i) maxd = std::max(maxd, (double)std::fabs(ls[i] - ld[i]));
      EXPECT_LE(maxd, 1e-5) << dtype_name(base) << " " << n << ":" << m;
      std::remove(sp.c_str());
      std::remove(dn.c_str());
    }
  }
}

TEST(PruneFile, BadKeepMaskRejectedAtLoad) {
  PruneOptions o;
  o.type = DType::Q8_0;
  const std::string sp = tmp_path("bad.gguf");
  PruneReport r;
  ASSERT_TRUE(prune_gguf(kStories, sp, o, &r).ok());
  uint64_t at = 0;
  {
    auto f = GgufFile::open(sp);
    ASSERT_TRUE(f.ok());
    const GgufTensorInfo* t = (*f)->tensor("blk.2.ffn_up.weight");
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->type, DType::Q8_0_S2_4);
    ASSERT_EQ(t->ne[0], 64);  // rows of 2 blocks: [2 d | 2 x 3 code bytes | 2 x 16 kept] = 42 bytes
    at = (uint64_t)(t->data - (*f)->file_data()) + 2 * 42 + 2 * 2 + 3;  // row 2, codes of block 1
  }
  std::fstream io(sp, std::ios::in | std::ios::out | std::ios::binary);
  io.seekp((std::streamoff)at);
  const char sevens[3] = {'\xFF', '\xFF', '\xFF'};  // every group: code 7, which 2:4 does not have
  io.write(sevens, 3);
  io.close();
  auto m = Model::load(sp);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("blk.2.ffn_up.weight"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("bad keep code"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("row 2 block 1 group 0 has keep code 7"), std::string::npos)
      << m.status().message();
  std::remove(sp.c_str());
}

// Without --type the base is the type of most prunable matrices: stories260K-Q4_0 keeps output in Q8_0
// and ffn_down in F16, but its attention and ffn_gate/up matrices are Q4_0.
TEST(PruneFile, DefaultBaseIsTheMajorityMatrixType) {
  PruneOptions o;
  const std::string p = tmp_path("q4-default.gguf");
  PruneReport r;
  ASSERT_TRUE(prune_gguf(std::string(FRUGAL_SHARED_DIR) + "/models/stories260K-Q4_0.gguf", p, o, &r).ok());
  auto f = GgufFile::open(p);
  ASSERT_TRUE(f.ok()) << f.status().message();
  const GgufTensorInfo* t = (*f)->tensor("blk.0.attn_q.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->type, DType::Q4_0_S2_4);
  std::remove(p.c_str());
}

TEST(PruneFile, SummaryAndErrors) {
  PruneOptions o;
  o.n = 3;
  o.m = 4;
  PruneReport r;
  EXPECT_FALSE(prune_gguf(kStories, tmp_path("x.gguf"), o, &r).ok());
  o.n = 2;
  o.only = "([";
  EXPECT_FALSE(prune_gguf(kStories, tmp_path("x.gguf"), o, &r).ok());
  o.only = R"(blk\.0\.attn_q)";
  const std::string p = tmp_path("only.gguf");
  ASSERT_TRUE(prune_gguf(kStories, p, o, &r).ok());
  int pruned = 0;
  for (const auto& t : r.tensors) pruned += t.pruned;
  EXPECT_EQ(pruned, 1);
  const std::string s = prune_summary(r);
  EXPECT_NE(s.find("attn"), std::string::npos) << s;
  std::remove(p.c_str());
}

}  // namespace
}  // namespace frugal
