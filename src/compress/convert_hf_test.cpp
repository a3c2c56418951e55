// frugal convert on the real TinyStories-656K checkpoint (../shared/models/tinystories-656k, HF safetensors,
// LlamaForCausalLM, tied embeddings, BPE tokenizer with byte fallback) and on malformed safetensors files.
//
// The logits check runs an independent reference forward pass in this file: HF LlamaForCausalLM semantics
// (rotate-half RoPE, GQA, tied head) in double precision on the safetensors tensors, read here with their
// own little parser, no GGUF and no row permutation. It proves the tensor name map and the q/k permutation.
#include "compress/convert_hf.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "backend/isa.h"
#include "base/thread_pool.h"
#include "compress/safetensors.h"
#include "gguf/gguf_file.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace frugal {
namespace {

const std::string kHfDir = std::string(FRUGAL_SHARED_DIR) + "/models/tinystories-656k";

std::string temp_path(const std::string& suffix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return "/tmp/frugal_convert_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name() +
         suffix;
}

// Converts once per outtype for the whole suite (files removed at the end).
class ConvertTest : public ::testing::Test {
 protected:
  static std::string converted(DType t) {
    static std::map<DType, std::string> paths;
    auto it = paths.find(t);
    if (it != paths.end()) return it->second;
    const std::string p = "/tmp/frugal_convert_" + std::to_string(::getpid()) + "_" + dtype_name(t) + ".gguf";
    ConvertOptions o;
    o.outtype = t;
    o.threads = 2;
    auto s = convert_hf_to_gguf(kHfDir, p, o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    paths[t] = p;
    created().push_back(p);
    return p;
  }
  static std::vector<std::string>& created() {
    static std::vector<std::string> v;
    return v;
  }
  static void TearDownTestSuite() {
    for (const std::string& p : created()) std::remove(p.c_str());
  }
};

// ---- independent HF reference -------------------------------------------------------------------------------

using Tensors = std::map<std::string, std::vector<double>>;

// Minimal safetensors parse (F32 only), independent of compress/safetensors.cpp; resolves the alias.
Tensors read_reference_tensors() {
  std::ifstream in(kHfDir + "/model.safetensors", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string b = ss.str();
  uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  const nlohmann::json h = nlohmann::json::parse(b.substr(8, n));
  Tensors t;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const uint64_t lo = (*it)["data_offsets"][0], hi = (*it)["data_offsets"][1];
    std::vector<float> f((hi - lo) / 4);
    std::memcpy(f.data(), b.data() + 8 + n + lo, hi - lo);
    t[it.key()] = std::vector<double>(f.begin(), f.end());
  }
  t["model.embed_tokens.weight"] = t["lm_head.weight"];  // tied (README: __metadata__ alias)
  return t;
}

// y[rows] = W[rows, cols] x[cols]
std::vector<double> matvec(const std::vector<double>& W, const std::vector<double>& x, size_t rows) {
  const size_t cols = x.size();
  std::vector<double> y(rows, 0.0);
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) y[r] += W[r * cols + c] * x[c];
  return y;
}

std::vector<double> rms_norm(const std::vector<double>& x, const std::vector<double>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double s = 1.0 / std::sqrt(ss / (double)x.size() + eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * w[i];
  return y;
}

// HF apply_rotary_pos_emb: x*cos + rotate_half(x)*sin, rotate_half(x) = [-x2, x1] over the two halves.
void rope_rotate_half(double* x, int hd, int pos, double theta) {
  const int half = hd / 2;
  for (int i = 0; i < half; ++i) {
    const double inv = std::pow(theta, -2.0 * i / hd), a = pos * inv;
    const double x1 = x[i], x2 = x[i + half];
    x[i] = x1 * std::cos(a) - x2 * std::sin(a);
    x[i + half] = x2 * std::cos(a) + x1 * std::sin(a);
  }
}

// Logits [T][V] of HF LlamaForCausalLM (config of tinystories-656k hard-coded from its config.json).
std::vector<std::vector<double>> reference_logits(const std::vector<int32_t>& tokens) {
  const int E = 128, L = 2, H = 8, HKV = 4, HD = 16, FF = 384, V = 2048;
  const double eps = 1e-6, theta = 10000.0;
  Tensors w = read_reference_tensors();
  const int T = (int)tokens.size();
  std::vector<std::vector<double>> x(T);
  for (int t = 0; t < T; ++t)
    x[t].assign(w["model.embed_tokens.weight"].begin() + (size_t)tokens[t] * E,
                w["model.embed_tokens.weight"].begin() + (size_t)(tokens[t] + 1) * E);
  for (int l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    std::vector<std::vector<double>> q(T), k(T), v(T);
    for (int t = 0; t < T; ++t) {
      const auto a = rms_norm(x[t], w[p + "input_layernorm.weight"], eps);
      q[t] = matvec(w[p + "self_attn.q_proj.weight"], a, H * HD);
      k[t] = matvec(w[p + "self_attn.k_proj.weight"], a, HKV * HD);
      v[t] = matvec(w[p + "self_attn.v_proj.weight"], a, HKV * HD);
      for (int h = 0; h < H; ++h) rope_rotate_half(&q[t][h * HD], HD, t, theta);
      for (int h = 0; h < HKV; ++h) rope_rotate_half(&k[t][h * HD], HD, t, theta);
    }
    for (int t = 0; t < T; ++t) {
      std::vector<double> o(H * HD, 0.0);
      for (int h = 0; h < H; ++h) {
        const int g = h / (H / HKV);
        std::vector<double> s(t + 1);
        double mx = -1e300, sum = 0;
        for (int u = 0; u <= t; ++u) {
          double d = 0;
          for (int i = 0; i < HD; ++i) d += q[t][h * HD + i] * k[u][g * HD + i];
          s[u] = d / std::sqrt((double)HD);
          mx = std::max(mx, s[u]);
        }
        for (int u = 0; u <= t; ++u) sum += (s[u] = std::exp(s[u] - mx));
        for (int u = 0; u <= t; ++u)
          for (int i = 0; i < HD; ++i) o[h * HD + i] += s[u] / sum * v[u][g * HD + i];
      }
      const auto ao = matvec(w[p + "self_attn.o_proj.weight"], o, E);
      for (int i = 0; i < E; ++i) x[t][i] += ao[i];
      const auto f = rms_norm(x[t], w[p + "post_attention_layernorm.weight"], eps);
      auto g = matvec(w[p + "mlp.gate_proj.weight"], f, FF);
      const auto u = matvec(w[p + "mlp.up_proj.weight"], f, FF);
      for (int i = 0; i < FF; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      const auto d = matvec(w[p + "mlp.down_proj.weight"], g, E);
      for (int i = 0; i < E; ++i) x[t][i] += d[i];
    }
  }
  std::vector<std::vector<double>> out(T);
  for (int t = 0; t < T; ++t) out[t] = matvec(w["lm_head.weight"], rms_norm(x[t], w["model.norm.weight"], eps), V);
  return out;
}

// frugal's logits [T * V] on a GGUF file.
std::vector<float> frugal_logits(const std::string& path, const std::vector<int32_t>& tokens) {
  auto m = Model::load(path);
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok()) return {};
  ThreadPool pool(2);
  auto backend = make_cpu_backend(&pool, detect_isa());
  KvCache kv((*m)->config(), 64, DType::F32);
  const int64_t T = (int64_t)tokens.size();
  std::vector<int32_t> pos(T);
  for (int64_t i = 0; i < T; ++i) pos[i] = (int32_t)i;
  std::vector<float> logits(T * (*m)->config().n_vocab);
  Status s = (*m)->forward(*backend, kv, tokens.data(), pos.data(), T, logits.data(), LogitsMode::kAll);
  EXPECT_TRUE(s.ok()) << s.message();
  return logits;
}

// ---- tests ---------------------------------------------------------------------------------------------------

TEST_F(ConvertTest, MetadataAndTensors) {
  auto f = GgufFile::open(converted(DType::F32));
  ASSERT_TRUE(f.ok()) << f.status().message();
  const GgufFile& g = **f;
  EXPECT_EQ(*g.get_string("general.architecture"), "llama");
  EXPECT_EQ(*g.get_int("llama.embedding_length"), 128);
  EXPECT_EQ(*g.get_int("llama.block_count"), 2);
  EXPECT_EQ(*g.get_int("llama.attention.head_count"), 8);
  EXPECT_EQ(*g.get_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(*g.get_int("llama.feed_forward_length"), 384);
  EXPECT_EQ(*g.get_int("llama.context_length"), 512);
  EXPECT_EQ(*g.get_int("llama.rope.dimension_count"), 16);
  EXPECT_NEAR(*g.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-6, 1e-12);
  EXPECT_EQ(*g.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(*g.get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(*g.get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(*g.get_int("tokenizer.ggml.unknown_token_id"), 0);
  // Tied: only token_embd (2 layers x 9 tensors + token_embd + output_norm).
  EXPECT_NE(g.tensor("token_embd.weight"), nullptr);
  EXPECT_EQ(g.tensor("output.weight"), nullptr);
  EXPECT_EQ(g.tensors().size(), 20u);
}

TEST_F(ConvertTest, TokenizerMatchesHfTokenization) {
  auto f = GgufFile::open(converted(DType::F32));
  ASSERT_TRUE(f.ok());
  auto tok = Tokenizer::from_gguf(**f);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  // Expected ids: HF tokenizers' BPE semantics applied by hand (a separate Python script) to tokenizer.json:
  // normalizer Prepend("▁") + Replace(" " -> "▁"), no pre-tokenizer (the whole text is one word), then
  // model.merges in rank order. E.g. "Once upon a time" -> ▁ On ce▁ upon▁a▁tim e.
  const std::vector<std::pair<std::string, std::vector<int32_t>>> cases = {
      {"Once upon a time", {80, 147, 201, 282, 57}},
      {"Tom and Lily were best friends.", {80, 875, 303, 245, 638, 426, 10}},
      {"\"Hello!\" said the big dog.\nThe end.", {80, 5, 1288, 67, 1528, 93, 202, 604, 446, 183, 10}},
      {"She had 3 red balls", {80, 892, 198, 14, 80, 1714, 71}},
      {"Zoe ate a quizzical jam sandwich",
       {80, 51, 67, 81, 1223, 134, 1746, 1155, 61, 295, 200, 62, 883, 1695, 130, 191}},
  };
  for (const auto& [text, ids] : cases) {
    EXPECT_EQ((*tok)->encode(text, false, false), ids) << text;
    std::vector<int32_t> with_bos = {1};
    with_bos.insert(with_bos.end(), ids.begin(), ids.end());
    EXPECT_EQ((*tok)->encode(text, true, false), with_bos) << text;  // add_bos_token true, BOS = 1
    EXPECT_EQ((*tok)->decode(with_bos), text);
  }
  // The same script tokenizes the whole of ppl_story.txt into 610 ids (no BOS).
  std::ifstream in(std::string(FRUGAL_SHARED_DIR) + "/models/ppl_story.txt", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ((*tok)->encode(ss.str(), false, false).size(), 610u);
}

TEST_F(ConvertTest, LogitsMatchIndependentHfReference) {
  // BOS + "Once upon a time" + two more tokens of the README greedy reference.
  const std::vector<int32_t> tokens = {1, 80, 147, 201, 282, 57, 215, 286};
  const auto ref = reference_logits(tokens);
  const std::vector<float> got = frugal_logits(converted(DType::F32), tokens);
  ASSERT_EQ(got.size(), tokens.size() * 2048);
  double worst = 0;
  for (size_t t = 0; t < tokens.size(); ++t) {
    double max_ref = 0, max_diff = 0;
    for (size_t i = 0; i < 2048; ++i) {
      max_ref = std::max(max_ref, std::fabs(ref[t][i]));
      max_diff = std::max(max_diff, std::fabs(ref[t][i] - got[t * 2048 + i]));
    }
    EXPECT_LT(max_diff, 1e-4 * max_ref)
        << "token " << t << ": max |diff| " << max_diff << " vs max |logit| " << max_ref;
    worst = std::max(worst, max_diff / max_ref);
  }
  std::printf("worst max|diff| / max|logit| over %zu tokens: %.3g\n", tokens.size(), worst);
}

TEST_F(ConvertTest, GreedyFromBosMatchesReadmeReference) {
  // ../shared/models/README.md "Reference 3": two independent implementations, first 59 ids reliable.
  const std::vector<int32_t> want = {147, 201, 282, 215, 286, 598, 1662, 356, 499, 826, 1363, 1145, 1652, 615,
                                     242, 1482, 951, 628, 499, 826, 872, 921, 318, 385, 628, 499, 826, 617, 242,
                                     198, 1047, 425, 1939, 122, 1924, 1171, 94, 303, 328, 229, 521, 776, 115, 1139,
                                     312, 447, 1456, 319, 115, 133, 114, 100, 167, 753, 1665, 361, 303, 1900, 319};
  auto m = Model::load(converted(DType::F32));
  ASSERT_TRUE(m.ok()) << m.status().message();
  ThreadPool pool(2);
  auto backend = make_cpu_backend(&pool, detect_isa());
  KvCache kv((*m)->config(), 128, DType::F32);
  std::vector<float> logits(2048);
  int32_t tok = 1;
  for (size_t i = 0; i < want.size(); ++i) {
    const int32_t pos = (int32_t)i;
    ASSERT_TRUE((*m)->forward(*backend, kv, &tok, &pos, 1, logits.data(), LogitsMode::kLast).ok());
    tok = (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
    ASSERT_EQ(tok, want[i]) << "step " << i;
  }
}

TEST_F(ConvertTest, F16AndQ8_0CloseToF32) {
  const std::vector<int32_t> tokens = {1, 80, 147, 201, 282, 57, 215, 286};
  const std::vector<float> f32 = frugal_logits(converted(DType::F32), tokens);
  for (DType t : {DType::F16, DType::BF16, DType::Q8_0}) {
    auto f = GgufFile::open(converted(t));
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_EQ((*f)->tensor("blk.0.attn_q.weight")->type, t);
    EXPECT_EQ((*f)->tensor("blk.0.attn_norm.weight")->type, DType::F32);
    const std::vector<float> got = frugal_logits(converted(t), tokens);
    ASSERT_EQ(got.size(), f32.size());
    double max_ref = 0, max_diff = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      max_ref = std::max(max_ref, (double)std::fabs(f32[i]));
      max_diff = std::max(max_diff, (double)std::fabs(f32[i] - got[i]));
    }
    EXPECT_LT(max_diff, (t == DType::F16 ? 2e-3 : 3e-2) * max_ref) << dtype_name(t);
    EXPECT_GT(max_diff, 0.0) << dtype_name(t);  // really converted
  }
}

// ---- synthetic Qwen2 checkpoint: no permutation, biases, byte-level BPE vocabulary -----------------------------

// Writes a single-file safetensors checkpoint of F32 tensors {name: (shape, values)} (values: i * 0.01 + salt).
void write_checkpoint(const std::string& dir, const std::vector<std::pair<std::string, std::vector<int64_t>>>& spec) {
  nlohmann::json h = nlohmann::json::object();
  std::string data;
  for (size_t k = 0; k < spec.size(); ++k) {
    int64_t n = 1;
    for (int64_t d : spec[k].second) n *= d;
    std::vector<float> v((size_t)n);
    for (int64_t i = 0; i < n; ++i) v[(size_t)i] = 0.01f * (float)((i * 7 + (int64_t)k * 13) % 23) - 0.1f;
    h[spec[k].first] = {
        {"dtype", "F32"}, {"shape", spec[k].second}, {"data_offsets", {data.size(), data.size() + 4 * n}}};
    data.append((const char*)v.data(), 4 * (size_t)n);
  }
  const std::string hs = h.dump();
  std::ofstream out(dir + "/model.safetensors", std::ios::binary);
  const uint64_t n = hs.size();
  out.write((const char*)&n, 8);
  out << hs << data;
}

TEST(ConvertSynthetic, Qwen2KeepsRowOrderAndBiasesWithGpt2Vocab) {
  const std::string dir = temp_path("_qwen2");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  std::ofstream(dir + "/config.json") << R"({"architectures":["Qwen2ForCausalLM"],"hidden_size":8,
      "num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"intermediate_size":16,
      "max_position_embeddings":64,"vocab_size":6,"rms_norm_eps":1e-6,"rope_theta":1000000.0,
      "tie_word_embeddings":false,"bos_token_id":5,"eos_token_id":5})";
  std::ofstream(dir + "/tokenizer.json") << R"({"added_tokens":[{"id":5,"content":"<|endoftext|>","special":true}],
      "model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"\u0120":3,"\u0120ab":4},"merges":["a b",["\u0120","ab"]]}})";
  std::ofstream(dir + "/tokenizer_config.json") << R"({"add_bos_token":false,"eos_token":"<|endoftext|>",
      "chat_template":"{{ messages }}"})";
  const std::string p = "model.layers.0.";
  std::vector<std::pair<std::string, std::vector<int64_t>>> spec = {
                        {"model.embed_tokens.weight", {6, 8}}, {"lm_head.weight", {6, 8}},
                         {"model.norm.weight", {8}}, {p + "input_layernorm.weight", {8}},
                         {p + "post_attention_layernorm.weight", {8}}, {p + "self_attn.q_proj.weight", {8, 8}},
                         {p + "self_attn.q_proj.bias", {8}}, {p + "self_attn.k_proj.weight", {4, 8}},
                         {p + "self_attn.k_proj.bias", {4}}, {p + "self_attn.v_proj.weight", {4, 8}},
                         {p + "self_attn.v_proj.bias", {4}}, {p + "self_attn.o_proj.weight", {8, 8}},
                         {p + "mlp.gate_proj.weight", {16, 8}}, {p + "mlp.up_proj.weight", {16, 8}},
                         {p + "mlp.down_proj.weight", {8, 16}}, {p + "self_attn.rotary_emb.inv_freq", {2}}};
  write_checkpoint(dir, spec);
  const std::string out = dir + "/out.gguf";
  ConvertOptions o;
  o.outtype = DType::F32;
  auto s = convert_hf_to_gguf(dir, out, o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->gguf_arch, "qwen2");
  EXPECT_EQ(s->tokenizer_model, "gpt2");
  {
    auto m = Model::load(out);
    ASSERT_TRUE(m.ok()) << m.status().message();
    const GgufFile& g = (*m)->gguf();
    EXPECT_EQ(*g.get_string("tokenizer.ggml.pre"), "qwen2");
    EXPECT_EQ(*g.get_int("tokenizer.ggml.eos_token_id"), 5);
    EXPECT_EQ(*g.get_string("tokenizer.chat_template"), "{{ messages }}");
    EXPECT_NE(g.tensor("output.weight"), nullptr);  // untied: both written
    // NEOX rope: q rows and biases in HF order, byte for byte.
    auto ck = SafetensorsCheckpoint::open(dir);
    ASSERT_TRUE(ck.ok());
    for (const auto& [hf, gg] : std::vector<std::pair<std::string, std::string>>{
             {p + "self_attn.q_proj.weight", "blk.0.attn_q.weight"},
             {p + "self_attn.k_proj.bias", "blk.0.attn_k.bias"}}) {
      const GgufTensorInfo* t = g.tensor(gg);
      ASSERT_NE(t, nullptr) << gg;
      ASSERT_EQ(t->nbytes, (*ck)->find(hf)->nbytes);
      EXPECT_EQ(std::memcmp(t->data, (*ck)->find(hf)->data, t->nbytes), 0) << gg;
    }
    auto tok = Tokenizer::from_gguf(g);
    ASSERT_TRUE(tok.ok()) << tok.status().message();
    EXPECT_EQ((*tok)->encode("ab ab", true, false), (std::vector<int32_t>{2, 4}));
  }
  // A stray tensor is an error naming it.
  spec.push_back({"model.extra.weight", {2}});
  write_checkpoint(dir, spec);
  auto bad = convert_hf_to_gguf(dir, out, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tensor 'model.extra.weight' has no GGUF equivalent"), std::string::npos)
      << bad.status().message();
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors", "out.gguf"})
    std::remove((dir + "/" + f).c_str());
  ::rmdir(dir.c_str());
}

TEST(ConvertPermute, MovesRotateHalfPairsToAdjacentRows) {
  // 2 heads of head_dim 4, 1 column: HF rows per head [a0 a1 b0 b1] -> GGUF [a0 b0 a1 b1].
  const float src[8] = {0, 1, 2, 3, 10, 11, 12, 13};
  float dst[8];
  permute_rope_rows(src, dst, 2, 8, 1);
  const float want[8] = {0, 2, 1, 3, 10, 12, 11, 13};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(dst[i], want[i]) << i;
}

TEST(ConvertOuttype, ParsesKnownNames) {
  EXPECT_EQ(*parse_convert_outtype("F16"), DType::F16);
  EXPECT_EQ(*parse_convert_outtype("q8_0"), DType::Q8_0);
  EXPECT_FALSE(parse_convert_outtype("q4_k").ok());
}

}  // namespace
}  // namespace frugal
