// GGUF reader/writer: round trips of every metadata type, tensors with data pointers, real files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>

#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"

namespace frugal {
namespace {

// from_memory() borrows the buffer: an lvalue must outlive the file; a temporary is kept alive here.
std::unique_ptr<GgufFile> reopen(const std::vector<uint8_t>& bytes) {
  auto f = GgufFile::from_memory(bytes.data(), bytes.size(), "mem.gguf");
  EXPECT_TRUE(f.ok()) << f.status().message();
  if (!f.ok()) return nullptr;
  return std::move(f).value();
}

std::unique_ptr<GgufFile> reopen(std::vector<uint8_t>&& temporary) {
  static std::deque<std::vector<uint8_t>> keep;
  keep.push_back(std::move(temporary));
  return reopen(keep.back());
}

TEST(GgufWriter, RoundTripsEveryScalarType) {
  GgufWriter w;
  w.set_u8("a.u8", 200);
  w.set_i8("a.i8", -100);
  w.set_u16("a.u16", 60000);
  w.set_i16("a.i16", -30000);
  w.set_u32("a.u32", 4000000000u);
  w.set_i32("a.i32", -2000000000);
  w.set_u64("a.u64", 1ull << 60);
  w.set_i64("a.i64", -(1ll << 60));
  w.set_f32("a.f32", 1.5f);
  w.set_f64("a.f64", -2.25e100);
  w.set_bool("a.t", true);
  w.set_bool("a.f", false);
  w.set_string("a.s", std::string("h\0llo", 5));
  w.set_string("a.empty", "");
  const std::vector<uint8_t> bytes = w.to_bytes();
  auto f = reopen(bytes);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->kvs().size(), 14u);
  EXPECT_EQ(f->kvs()[0].key, "a.u8");  // order preserved
  EXPECT_EQ(*f->get_int("a.u8"), 200);
  EXPECT_EQ(*f->get_int("a.i8"), -100);
  EXPECT_EQ(*f->get_int("a.u16"), 60000);
  EXPECT_EQ(*f->get_int("a.i16"), -30000);
  EXPECT_EQ(*f->get_int("a.u32"), 4000000000ll);
  EXPECT_EQ(*f->get_int("a.i32"), -2000000000);
  EXPECT_EQ(*f->get_int("a.u64"), 1ll << 60);
  EXPECT_EQ(*f->get_int("a.i64"), -(1ll << 60));
  EXPECT_EQ(*f->get_float("a.f32"), 1.5);
  EXPECT_EQ(*f->get_float("a.f64"), -2.25e100);
  EXPECT_TRUE(*f->get_bool("a.t", false));
  EXPECT_FALSE(*f->get_bool("a.f", true));
  EXPECT_EQ(*f->get_string("a.s"), std::string("h\0llo", 5));
  EXPECT_EQ(*f->get_string("a.empty"), "");
  EXPECT_EQ(f->find("a.u32")->type, GgufType::UINT32);
  EXPECT_EQ(f->find("a.i8")->type, GgufType::INT8);
  EXPECT_EQ(f->find("nope"), nullptr);
  EXPECT_EQ(f->tensors().size(), 0u);
}

TEST(GgufWriter, RoundTripsArrays) {
  GgufWriter w;
  w.set_string_array("t.tokens", {"a", "", "<s>", std::string(300, 'x')});
  w.set_i32_array("t.types", {1, -2, 3, 2147483647});
  w.set_f32_array("t.scores", {0.5f, -1.25f});
  w.set_string_array("t.none", {});
  auto f = reopen(w.to_bytes());
  ASSERT_TRUE(f);
  auto tok = f->get_string_array("t.tokens");
  ASSERT_TRUE(tok.ok());
  ASSERT_EQ(tok->size(), 4u);
  EXPECT_EQ((*tok)[2], "<s>");
  EXPECT_EQ((*tok)[3].size(), 300u);
  auto types = f->get_int_array("t.types");
  ASSERT_TRUE(types.ok());
  EXPECT_EQ(*types, (std::vector<int64_t>{1, -2, 3, 2147483647}));
  auto scores = f->get_float_array("t.scores");
  ASSERT_TRUE(scores.ok());
  EXPECT_EQ(*scores, (std::vector<float>{0.5f, -1.25f}));
  // Integers convert to floats; floats are not integers.
  EXPECT_EQ(*f->get_float_array("t.types"), (std::vector<float>{1, -2, 3, 2147483648.f}));
  EXPECT_FALSE(f->get_int_array("t.scores").ok());
  const GgufValue* v = f->find("t.types");
  EXPECT_EQ(v->elem_type, GgufType::INT32);
  EXPECT_EQ(v->count, 4u);
  EXPECT_EQ(v->array_int(1), -2);
  EXPECT_EQ(v->array_float(2), 3.0);
  EXPECT_EQ(f->find("t.scores")->array_float(1), -1.25);
  EXPECT_EQ(f->get_string_array("t.none")->size(), 0u);
}

TEST(GgufWriter, SetReplacesExistingKey) {
  GgufWriter w;
  w.set_u32("k", 1);
  w.set_string("other", "x");
  w.set_string("k", "now a string");
  auto f = reopen(w.to_bytes());
  ASSERT_TRUE(f);
  ASSERT_EQ(f->kvs().size(), 2u);
  EXPECT_EQ(*f->get_string("k"), "now a string");
}

TEST(GgufFile, TypedGettersReportWrongTypeAndAbsence) {
  GgufWriter w;
  w.set_string("s", "x");
  w.set_u32("n", 7);
  w.set_f32("x", 0.25f);
  w.set_u64("big", ~0ull);
  auto f = reopen(w.to_bytes());
  ASSERT_TRUE(f);
  auto e = f->get_int("s");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "mem.gguf: key 's' has type STRING, expected an integer");
  EXPECT_NE(f->get_float("n").status().message().find("key 'n' has type UINT32"), std::string::npos);
  EXPECT_FALSE(f->get_string("n").ok());
  EXPECT_FALSE(f->get_bool("n", false).ok());
  EXPECT_FALSE(f->get_string_array("s").ok());
  EXPECT_FALSE(f->get_int("big").ok());
  auto m = f->get_int("missing");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(m.status().message(), "mem.gguf: key 'missing' not found");
  EXPECT_EQ(*f->get_int("missing", 42), 42);
  EXPECT_EQ(*f->get_float("missing", 0.5), 0.5);
  EXPECT_EQ(*f->get_string("missing", "d"), "d");
  EXPECT_TRUE(*f->get_bool("missing", true));
  EXPECT_FALSE(f->get_int("s", 3).ok());  // present with the wrong type: error, not the default
  EXPECT_EQ(*f->get_float("x", 9), 0.25);
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = (uint8_t)(seed + k * 7);
  return v;
}

TEST(GgufWriter, TensorsOfSeveralTypesAreAlignedWithCorrectData) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.add_tensor("f32", DType::F32, {3, 2}, pattern(24, 1));
  w.add_tensor("f16", DType::F16, {5}, pattern(10, 2));
  w.add_tensor("q8", DType::Q8_0, {64, 3}, pattern(2 * 34 * 3, 3));
  w.add_tensor("q4k", DType::Q4_K, {256, 1, 2}, pattern(144 * 2, 4));
  w.add_tensor_lazy("lazy", DType::Q4_0, {32, 2, 1, 3}, [](uint8_t* dst) {
    std::vector<uint8_t> p = pattern(18 * 6, 5);
    std::memcpy(dst, p.data(), p.size());
  });
  w.add_tensor("iq2", DType::IQ2_XXS, {256}, pattern(66, 6));  // known type, not implemented: parses
  const std::vector<uint8_t> bytes = w.to_bytes();
  auto f = reopen(bytes);
  ASSERT_TRUE(f);
  ASSERT_EQ(f->tensors().size(), 6u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->data_offset() % 32, 0u);
  struct Want { const char* name; DType type; int n_dims; std::vector<int64_t> ne; size_t nbytes; uint8_t seed; };
  const Want want[] = {
      {"f32", DType::F32, 2, {3, 2, 1, 1}, 24, 1},         {"f16", DType::F16, 1, {5, 1, 1, 1}, 10, 2},
      {"q8", DType::Q8_0, 2, {64, 3, 1, 1}, 204, 3},       {"q4k", DType::Q4_K, 3, {256, 1, 2, 1}, 288, 4},
      {"lazy", DType::Q4_0, 4, {32, 2, 1, 3}, 108, 5},     {"iq2", DType::IQ2_XXS, 1, {256, 1, 1, 1}, 66, 6},
  };
  for (const Want& x : want) {
    const GgufTensorInfo* t = f->tensor(x.name);
    ASSERT_NE(t, nullptr) << x.name;
    EXPECT_EQ(t->type, x.type);
    EXPECT_EQ(t->n_dims, x.n_dims);
    for (int d = 0; d < 4; ++d) EXPECT_EQ(t->ne[d], x.ne[d]) << x.name;
    EXPECT_EQ(t->nbytes, x.nbytes);
    EXPECT_EQ(t->offset % 32, 0u);
    EXPECT_EQ(t->data, bytes.data() + f->data_offset() + t->offset);
    EXPECT_EQ(std::vector<uint8_t>(t->data, t->data + t->nbytes), pattern(x.nbytes, x.seed)) << x.name;
  }
  EXPECT_EQ(f->tensor("q8")->shape_string(), "{64, 3}");
  EXPECT_EQ(f->tensor("q8")->row_bytes(), 68u);
  EXPECT_EQ(f->tensor("missing"), nullptr);
  EXPECT_EQ(f->tensors()[4].name, "lazy");  // file order preserved
}

TEST(GgufWriter, HonorsGeneralAlignment) {
  GgufWriter w;
  w.set_u32("general.alignment", 256);
  w.add_tensor("a", DType::F32, {3}, pattern(12, 1));
  w.add_tensor("b", DType::F32, {1}, pattern(4, 2));
  const std::vector<uint8_t> bytes = w.to_bytes();
  auto f = reopen(bytes);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->alignment(), 256u);
  EXPECT_EQ(f->data_offset(), 256u);
  EXPECT_EQ(f->tensor("b")->offset, 256u);
  EXPECT_EQ(bytes.size(), 256u * 3);
}

TEST(GgufWriter, WriteCreatesFileAtomicallyAndCopiesKvs) {
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/frugal_gguf_writer_test.gguf";
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "a"});
  w.set_f32_array("tokenizer.ggml.scores", {0, -1});
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_string("general.name", "not copied");
  w.add_tensor_lazy("t", DType::F16, {4, 4}, [](uint8_t* dst) { std::memset(dst, 0x3c, 32); });
  ASSERT_TRUE(w.write(path).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ((*f)->path(), path);
  EXPECT_EQ((*f)->tensor("t")->data[31], 0x3c);

  GgufWriter copy;
  copy.copy_kvs(**f, "tokenizer.");
  auto g = reopen(copy.to_bytes());
  ASSERT_TRUE(g);
  EXPECT_EQ(g->kvs().size(), 5u);
  EXPECT_EQ(g->find("general.name"), nullptr);
  EXPECT_EQ(*g->get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(g->get_string_array("tokenizer.ggml.tokens")->at(1), "a");
  EXPECT_EQ(g->get_float_array("tokenizer.ggml.scores")->at(1), -1.f);
  EXPECT_EQ(*g->get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(g->find("tokenizer.ggml.bos_token_id")->type, GgufType::UINT32);
  EXPECT_TRUE(*g->get_bool("tokenizer.ggml.add_bos_token", false));
  std::remove(path.c_str());

  Status bad = w.write(dir + "/no/such/dir/x.gguf");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("no/such/dir/x.gguf"), std::string::npos) << bad.message();
}

TEST(GgufFile, OpenReportsMissingFile) {
  auto f = GgufFile::open("/nonexistent/frugal.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("/nonexistent/frugal.gguf"), std::string::npos);
}

// ---- real files ----

std::vector<std::string> real_files() {
  std::vector<std::string> out;
  for (const char* sub : {"golden", "models", "vocab"}) {
    const std::filesystem::path dir = std::filesystem::path(FRUGAL_SHARED_DIR) / sub;
    if (!std::filesystem::exists(dir)) continue;
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.path().extension() == ".gguf") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(GgufFile, EveryRealFileOpens) {
  const std::vector<std::string> files = real_files();
  ASSERT_GE(files.size(), 5u) << "shared files missing under " << FRUGAL_SHARED_DIR;
  for (const std::string& path : files) {
    auto f = GgufFile::open(path);
    ASSERT_TRUE(f.ok()) << f.status().message();
    const GgufFile& g = **f;
    EXPECT_TRUE(g.get_string("general.architecture").ok() || g.tensors().empty()) << path;
    for (const GgufTensorInfo& t : g.tensors()) {
      EXPECT_EQ(t.data, g.file_data() + g.data_offset() + t.offset) << path << " " << t.name;
      EXPECT_LE(g.data_offset() + t.offset + t.nbytes, g.file_size());
    }
  }
}

TEST(GgufFile, Stories260KKnownValues) {
  auto f = GgufFile::open(std::string(FRUGAL_SHARED_DIR) + "/models/stories260K.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  const GgufFile& g = **f;
  EXPECT_EQ(*g.get_string("general.architecture"), "llama");
  EXPECT_EQ(*g.get_int("llama.embedding_length"), 64);
  EXPECT_EQ(g.tensors().size(), 48u);
  EXPECT_EQ(g.get_string_array("tokenizer.ggml.tokens")->size(), 512u);
  EXPECT_EQ(g.get_float_array("tokenizer.ggml.scores")->size(), 512u);
  EXPECT_EQ(*g.get_string("tokenizer.ggml.model"), "llama");
  const GgufTensorInfo* emb = g.tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->ne[0], 64);
  EXPECT_EQ(emb->ne[1], 512);
  EXPECT_EQ(emb->type, DType::F32);
  // F32 embedding values are finite and small.
  float x;
  std::memcpy(&x, emb->data, 4);
  EXPECT_TRUE(std::isfinite(x));
  EXPECT_LT(std::fabs(x), 10.f);
}

TEST(GgufFile, DeepseekVocabHasTokensAndMerges) {
  auto f = GgufFile::open(std::string(FRUGAL_SHARED_DIR) + "/vocab/ggml-vocab-deepseek-llm.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(*(*f)->get_string("tokenizer.ggml.model"), "gpt2");
  auto tokens = (*f)->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok());
  EXPECT_GT(tokens->size(), 100000u);
  EXPECT_GT((*f)->get_string_array("tokenizer.ggml.merges")->size(), 10000u);
  EXPECT_EQ((*f)->get_int_array("tokenizer.ggml.token_type")->size(), tokens->size());
}

}  // namespace
}  // namespace frugal
