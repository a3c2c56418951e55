// frugal quantize: round-trip error budgets per type (random normal and real stories260K weights), the
// importance-weighted quantizers lower the weighted error, byte-exact agreement with llama-quantize's own
// files (types chosen by the recipe and tensor bytes), determinism, read-back, and the imatrix file format.
#include "compress/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "backend/isa.h"
#include "backend/quant.h"
#include "base/rng.h"
#include "compress/imatrix.h"
#include "gguf/gguf_file.h"
#include "support/temp_path.h"

namespace frugal {
namespace {

const std::string kShared = FRUGAL_SHARED_DIR;

std::string temp_path(const std::string& name) {
  return test_temp_path(name);
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

double normal(Rng& rng) {
  return std::sqrt(-2.0 * std::log(rng.next_double_open0())) * std::cos(6.283185307179586 * rng.next_double());
}

// sqrt(sum w (x - q)^2 / sum w x^2) for one row quantized to `type` (importance may be null).
double rel_error(DType type, const std::vector<float>& x, const float* importance, const float* w = nullptr) {
  const int64_t n = (int64_t)x.size();
  std::vector<uint8_t> q(dtype_row_bytes(type, n));
  std::vector<float> back((size_t)n);
  quantize_row_weights_imatrix(type, x.data(), q.data(), n, importance);
  quant_traits(type, Isa::kScalar)->to_float(q.data(), back.data(), n);
  double e = 0, s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double wi = w ? w[i] : 1.0;
    e += wi * (x[(size_t)i] - back[(size_t)i]) * (x[(size_t)i] - back[(size_t)i]);
    s += wi * x[(size_t)i] * x[(size_t)i];
  }
  return std::sqrt(e / s);
}

struct Budget {
  DType type;
  double normal;  // relative RMSE on N(0, 1) rows
};
// Worst of 8 rows of 4096, measured (docs/QUANTIZE.md: 0.0054 0.0183 0.0367 0.0387 0.0438 0.0723 0.0790
// 0.0879) with ~15% headroom; a wrong quantizer misses these by far.
const Budget kBudgets[] = {
    {DType::Q8_0, 0.0063}, {DType::Q6_K, 0.021}, {DType::Q5_K, 0.042}, {DType::Q5_1, 0.045},
    {DType::Q5_0, 0.050},  {DType::Q4_K, 0.083}, {DType::Q4_1, 0.091}, {DType::Q4_0, 0.101},
};

TEST(QuantizeRoundTrip, ErrorWithinBudgetOnNormalRows) {
  Rng rng(11);
  std::vector<float> x(4096);
  for (const Budget& b : kBudgets) {
    double worst = 0;
    for (int r = 0; r < 8; ++r) {
      for (float& v : x) v = (float)normal(rng);
      worst = std::max(worst, rel_error(b.type, x, nullptr));
    }
    std::printf("  %-5s relative RMSE %.5f (budget %.4f)\n", dtype_name(b.type), worst, b.normal);
    EXPECT_LE(worst, b.normal) << dtype_name(b.type);
    EXPECT_GE(worst, b.normal / 4) << dtype_name(b.type) << ": suspiciously small (budget table out of date?)";
  }
}

TEST(QuantizeRoundTrip, ErrorWithinBudgetOnStories260K) {
  auto f = GgufFile::open(kShared + "/models/stories260K.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  const GgufTensorInfo* t = (*f)->tensor("blk.0.attn_q.weight");  // 64 x 64 F32, real trained weights
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->type, DType::F32);
  const int64_t K = t->ne[0];
  for (const Budget& b : kBudgets) {
    if (K % dtype_block_size(b.type) != 0) continue;  // K-quants need rows of 256
    double e = 0, s = 0;
    for (int64_t r = 0; r < t->ne[1]; ++r) {
      std::vector<float> x((size_t)K);
      std::memcpy(x.data(), t->data + r * K * 4, (size_t)K * 4);
      const double re = rel_error(b.type, x, nullptr);
      double ss = 0;
      for (float v : x) ss += v * v;
      e += re * re * ss;
      s += ss;
    }
    const double rel = std::sqrt(e / s);
    std::printf("  stories260K attn_q %-5s relative RMSE %.5f\n", dtype_name(b.type), rel);
    EXPECT_LE(rel, 1.5 * b.normal) << dtype_name(b.type);  // real weights: heavier tails than N(0,1)
  }
}

TEST(QuantizeImatrix, LowersTheWeightedError) {
  Rng rng(3);
  const int64_t n = 1024;
  std::vector<float> x((size_t)n), imp((size_t)n);
  for (DType type : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    double with = 0, without = 0;
    for (int r = 0; r < 16; ++r) {
      for (int64_t i = 0; i < n; ++i) {
        x[(size_t)i] = (float)normal(rng);
        imp[(size_t)i] = (float)std::exp(2.0 * normal(rng));  // a few columns matter a lot
      }
      with += rel_error(type, x, imp.data(), imp.data());
      without += rel_error(type, x, nullptr, imp.data());
    }
    std::printf("  %-5s weighted relative RMSE: without imatrix %.5f, with %.5f\n", dtype_name(type), without / 16,
                with / 16);
    EXPECT_LT(with, 0.9 * without) << dtype_name(type);
  }
  // Types that ignore the importance give exactly the plain quantizer's bytes.
  for (float& v : x) v = (float)normal(rng);
  std::vector<uint8_t> a(dtype_row_bytes(DType::Q8_0, n)), b(a.size());
  quantize_row_weights(DType::Q8_0, x.data(), a.data(), n);
  quantize_row_weights_imatrix(DType::Q8_0, x.data(), b.data(), n, imp.data());
  EXPECT_EQ(a, b);
}

QuantizeOptions options(const std::string& type) {
  QuantizeOptions o;
  o.type = type;
  o.threads = 2;
  return o;
}

// Our output of `src` as `type` has the types and the tensor bytes of llama-quantize's file `want`.
void expect_same_as_llama_quantize(const std::string& src, const std::string& type, const std::string& want,
                                   bool pure = false) {
  SCOPED_TRACE(src + " -> " + type + (pure ? " --pure" : ""));
  const std::string out = temp_path(type + ".gguf");
  QuantizeOptions o = options(type);
  o.pure = pure;
  auto s = quantize_model(src, out, o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  auto ours = GgufFile::open(out);
  auto theirs = GgufFile::open(want);
  ASSERT_TRUE(ours.ok() && theirs.ok());
  ASSERT_EQ((*ours)->tensors().size(), (*theirs)->tensors().size());
  for (const GgufTensorInfo& t : (*theirs)->tensors()) {
    const GgufTensorInfo* o = (*ours)->tensor(t.name);
    ASSERT_NE(o, nullptr) << t.name;
    EXPECT_EQ(dtype_name(o->type), std::string(dtype_name(t.type))) << t.name;
    if (o->type != t.type) continue;
    ASSERT_EQ(o->nbytes, t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(o->data, t.data, t.nbytes), 0) << t.name << ": bytes differ from llama-quantize's";
  }
  EXPECT_EQ((*ours)->get_int("general.file_type").value(), (*theirs)->get_int("general.file_type").value());
  std::filesystem::remove(out);
}

TEST(QuantizeModel, Stories260KEqualsLlamaQuantize) {
  expect_same_as_llama_quantize(kShared + "/models/stories260K.gguf", "Q8_0", kShared + "/models/stories260K-Q8_0.gguf");
  expect_same_as_llama_quantize(kShared + "/models/stories260K.gguf", "Q4_0", kShared + "/models/stories260K-Q4_0.gguf");
}

// The golden single-type files were made with llama-quantize --pure (output.weight in the same type).
TEST(QuantizeModel, GoldenLlamaEqualsLlamaQuantize) {
  const std::string g = kShared + "/golden/";
  for (const char* type : {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q6_K"})
    expect_same_as_llama_quantize(g + "llama-gqa-F32.gguf", type, g + "llama-gqa-" + type + ".gguf", true);
  expect_same_as_llama_quantize(g + "llama-gqa-F32.gguf", "Q4_K_M", g + "llama-gqa-Q4_K_M.gguf");
}

TEST(QuantizeModel, MoeRecipeMatchesLlamaQuantize) {
  const std::string g = kShared + "/golden/";
  for (const char* fam : {"deepseek-moe", "deepseek2-v3"}) {
    auto src = GgufFile::open(g + fam + "-F32.gguf");
    auto want = GgufFile::open(g + fam + "-Q4_K_M.gguf");
    ASSERT_TRUE(src.ok() && want.ok());
    auto plan = plan_quantization(**src, options("Q4_K_M"));
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    for (const TensorPlan& p : plan->tensors) {
      const GgufTensorInfo* t = (*want)->tensor(p.name);
      ASSERT_NE(t, nullptr) << p.name;
      EXPECT_EQ(dtype_name(p.to), std::string(dtype_name(t->type))) << fam << " " << p.name;
    }
  }
}

TEST(QuantizeModel, DeterministicReadsBackAndHonoursOptions) {
  const std::string src = kShared + "/golden/llama-gqa-F32.gguf";
  QuantizeOptions o = options("Q4_K_M");
  o.overrides = {{"ffn_up", "Q8_0"}};
  o.leave_output = true;
  const std::string a = temp_path("a.gguf"), b = temp_path("b.gguf");
  ASSERT_TRUE(quantize_model(src, a, o).ok());
  o.threads = 1;
  auto s = quantize_model(src, b, o);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(file_bytes(a), file_bytes(b));  // same bytes whatever the thread count
  auto in = GgufFile::open(src);
  auto out = GgufFile::open(a);
  ASSERT_TRUE(in.ok() && out.ok());
  EXPECT_EQ((*out)->kvs().size(), (*in)->kvs().size() + ((*in)->find("general.quantization_version") ? 0 : 1));
  EXPECT_EQ((*out)->alignment(), (*in)->alignment());
  for (const GgufTensorInfo& t : (*in)->tensors()) {
    const GgufTensorInfo* q = (*out)->tensor(t.name);
    ASSERT_NE(q, nullptr);
    if (t.name.find("ffn_up") != std::string::npos) EXPECT_EQ(q->type, DType::Q8_0) << t.name;
    if (t.name == "output.weight" || t.n_dims == 1) {
      EXPECT_EQ(q->type, DType::F32) << t.name;
      EXPECT_EQ(std::memcmp(q->data, t.data, t.nbytes), 0) << t.name;
      continue;
    }
    // Read back: every row equals quantizing the source row on its own.
    std::vector<uint8_t> row(q->row_bytes());
    for (int64_t r = 0; r < t.n_rows(); r += 7) {
      quantize_row_weights(q->type, reinterpret_cast<const float*>(t.data) + r * t.ne[0], row.data(), t.ne[0]);
      ASSERT_EQ(std::memcmp(row.data(), q->data + r * q->row_bytes(), row.size()), 0) << t.name << " row " << r;
    }
  }
  EXPECT_NE(format_quantize_summary(*s).find("bits per weight"), std::string::npos);
  std::filesystem::remove(a);
  std::filesystem::remove(b);
}

TEST(QuantizeModel, RejectsBadOptions) {
  const std::string src = kShared + "/golden/llama-gqa-F32.gguf";
  auto s = quantize_model(src, temp_path("bad.gguf"), options("Q3_K"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("unknown quantization type 'Q3_K'"), std::string::npos);
  QuantizeOptions o = options("Q8_0");
  o.overrides = {{"(", "Q4_0"}};
  s = quantize_model(src, temp_path("bad.gguf"), o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("bad regular expression"), std::string::npos) << s.status().message();
  EXPECT_FALSE(std::filesystem::exists(temp_path("bad.gguf")));
}

TEST(Imatrix, DatFormatRoundTripsAndRejectsTruncation) {
  Imatrix m;
  m.chunks = 3;
  m.datasets = {"calib.txt"};
  m.entries["blk.0.attn_q.weight"] = ImatrixEntry{3, {1.f, 2.f, 0.5f, 4.f}, {}};
  m.entries["blk.0.ffn_up_exps.weight"] = ImatrixEntry{3, {1, 1, 2, 2, 3, 3}, {}};
  const std::vector<uint8_t> bytes = imatrix_dat_bytes(m);
  // Layout: count, then per entry len/name/ncall/nval/values*ncall, then chunks and dataset.
  int32_t first_ncall;
  std::memcpy(&first_ncall, bytes.data() + 4 + 4 + 19, 4);
  EXPECT_EQ(first_ncall, 3);
  float v0;
  std::memcpy(&v0, bytes.data() + 4 + 4 + 19 + 8, 4);
  EXPECT_FLOAT_EQ(v0, 3.f);  // stored as mean * ncall, as llama-imatrix writes
  auto back = parse_imatrix_dat(bytes.data(), bytes.size(), "t.dat");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->chunks, 3);
  EXPECT_EQ(back->datasets, std::vector<std::string>{"calib.txt"});
  ASSERT_EQ(back->entries.size(), 2u);
  EXPECT_EQ(back->find("blk.0.attn_q.weight")->values, m.entries["blk.0.attn_q.weight"].values);
  EXPECT_EQ(imatrix_dat_bytes(*back), bytes);
  for (size_t cut : {size_t{2}, size_t{10}, bytes.size() - 30, bytes.size() - 3}) {
    auto bad = parse_imatrix_dat(bytes.data(), cut, "t.dat");
    EXPECT_FALSE(bad.ok()) << cut;
    if (!bad.ok()) EXPECT_EQ(bad.status().message().rfind("t.dat: ", 0), 0u) << bad.status().message();
  }
}

}  // namespace
}  // namespace frugal
