#include "model/synth.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "backend/quant.h"
#include "base/thread_pool.h"
#include "gguf/gguf_file.h"
#include "base/rng.h"
#include "gguf/gguf_writer.h"
#include "model/quant_recipe.h"
#include "tensor/dtype.h"

namespace frugal {

namespace {

// ---- random numbers: base/rng.h for streams, a ziggurat for normals ----

// Standard normal samples by Marsaglia & Tsang's ziggurat (128 layers): one 64-bit draw and a compare
// for ~99% of samples, about 10x cheaper than Box-Muller's log/sqrt/sin/cos. The low 7 bits of a draw
// pick the layer and the high 32 bits (signed) the position, so the two are independent.
class Ziggurat {
 public:
  Ziggurat() {
    const double m = 2147483648.0;  // 2^31
    double dn = kR, tn = kR;
    const double q = kV / std::exp(-0.5 * dn * dn);
    k_[0] = (uint32_t)((dn / q) * m);
    k_[1] = 0;
    w_[0] = q / m;
    w_[127] = dn / m;
    f_[0] = 1.0;
    f_[127] = std::exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; --i) {
      dn = std::sqrt(-2.0 * std::log(kV / dn + std::exp(-0.5 * dn * dn)));
      k_[i + 1] = (uint32_t)((dn / tn) * m);
      tn = dn;
      f_[i] = std::exp(-0.5 * dn * dn);
      w_[i] = dn / m;
    }
  }

  double sample(Rng& rng) const {
    for (;;) {
      const uint64_t u = rng.next_u64();
      const int i = (int)(u & 127);
      const int32_t h = (int32_t)(uint32_t)(u >> 32);
      const double x = h * w_[i];
      const uint32_t mag = h < 0 ? (uint32_t)(-(int64_t)h) : (uint32_t)h;
      if (mag < k_[i]) return x;  // inside the layer's rectangle
      if (i == 0) {               // the tail beyond kR
        double a, b;
        do {
          a = -std::log(rng.next_double_open0()) / kR;
          b = -std::log(rng.next_double_open0());
        } while (b + b < a * a);
        return h > 0 ? kR + a : -kR - a;
      }
      if (f_[i] + rng.next_double_open0() * (f_[i - 1] - f_[i]) < std::exp(-0.5 * x * x)) return x;  // wedge
    }
  }

 private:
  static constexpr double kR = 3.442619855899;        // start of the tail
  static constexpr double kV = 9.91256303526217e-3;   // area of each layer
  uint32_t k_[128];
  double w_[128], f_[128];
};

const Ziggurat& ziggurat() {
  static const Ziggurat z;
  return z;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

enum class Fill { kNormal, kOnes, kJitter };

// Row r of a tensor: n values from a stream seeded by (tensor seed, r) only.
void fill_row(uint64_t tensor_seed, int64_t r, Fill fill, float std, float* out, int64_t n) {
  uint64_t s = tensor_seed ^ ((uint64_t)r * 0xd1b54a32d192ed03ull);
  Rng rng(splitmix64(&s));
  if (fill == Fill::kOnes) {
    for (int64_t i = 0; i < n; ++i) out[i] = 1.f;
  } else if (fill == Fill::kJitter) {
    for (int64_t i = 0; i < n; ++i) out[i] = (float)(0.8 + 0.4 * rng.next_double_open0());
  } else {
    const Ziggurat& z = ziggurat();
    for (int64_t i = 0; i < n; ++i) out[i] = (float)(std * z.sample(rng));
  }
}

// ---- weight types ----

// The weight type of each tensor comes from the shared quantization recipe (model/quant_recipe.h): single
// types are pure (every 2-D/3-D weight gets the type, with the row-length fallback), the _M/_S mixes follow
// llama-quantize.
using TypePlan = QuantRecipe;

StatusOr<TypePlan> parse_weight_type(const std::string& name) {
  auto r = parse_quant_recipe(name);
  if (!r.ok()) return invalid_argument("synth: unknown weight_type '" + name + "' (one of " + quant_recipe_names() + ")");
  TypePlan plan = std::move(r).value();
  plan.pure = plan.mix == QuantMix::kNone;
  return plan;
}

// kind: "output" (output.weight, or token_embd when tied), "attn_v" (attn_v, attn_kv_b), "attn_k",
// "attn_output", "ffn_down" (ffn_down, ffn_down_exps, ffn_down_shexp), or "" (other 2-D/3-D).
DType choose_type(const TypePlan& plan, const std::string& kind, int layer, int n_layer, int64_t ne0, int n_expert) {
  RecipeModel m;
  m.n_layer = n_layer;
  m.n_expert = n_expert;
  m.n_attn_v = n_layer;  // one attn_v-like tensor per layer
  RecipeTensor t;
  t.ne0 = ne0;
  std::string name;
  if (kind == "output") name = "output.weight";
  else if (kind == "attn_v") name = "blk." + std::to_string(layer) + ".attn_v.weight";
  else if (kind.empty()) name = "weight";
  else name = "blk." + std::to_string(layer) + "." + kind + ".weight";
  t.name = name;
  t.i_attn_v = kind == "attn_v" ? layer : -1;
  return recipe_tensor_type(plan, m, t);
}

// ---- vocabulary ----

// <unk> <s> </s>, <0x00>..<0xFF>, then distinct lowercase pieces (alternately with the SPM space mark).
void add_synthetic_vocab(GgufWriter& w, int n_vocab) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  std::vector<float> scores = {0.f, 0.f, 0.f};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
    types.push_back(6);
    scores.push_back(0.f);
  }
  for (int k = 0; (int)tokens.size() < n_vocab; ++k) {
    std::string piece;
    for (int v = k / 2 + 1; v > 0; v = (v - 1) / 26) piece.insert(piece.begin(), (char)('a' + (v - 1) % 26));
    tokens.push_back(k % 2 == 0 ? "\xe2\x96\x81" + piece : piece);  // U+2581 marks a leading space
    types.push_back(1);
    scores.push_back(-(float)(k + 1));
  }
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string("tokenizer.ggml.pre", "default");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
}

constexpr int kSyntheticVocabMin = 3 + 256;

Status validate_moe(const SynthSpec& s) {
  auto bad = [](const std::string& m) { return invalid_argument("synth: " + m); };
  if (s.n_expert <= 0 || s.n_expert_used <= 0 || s.n_expert_used > s.n_expert || s.n_ff_exp <= 0)
    return bad("MoE needs n_expert > 0, 0 < n_expert_used <= n_expert and n_ff_exp > 0");
  if (s.n_expert_shared < 0 || s.n_layer_dense_lead < 0 || s.n_layer_dense_lead > s.n_layer)
    return bad("n_expert_shared must be >= 0 and n_layer_dense_lead in [0, n_layer]");
  if (s.n_expert_groups < 1 || s.n_expert % s.n_expert_groups != 0 || s.n_expert_groups_used < 1 ||
      s.n_expert_groups_used > s.n_expert_groups ||
      s.n_expert_groups_used * (s.n_expert / s.n_expert_groups) < s.n_expert_used)
    return bad("expert groups " + std::to_string(s.n_expert_groups_used) + "/" + std::to_string(s.n_expert_groups) +
               " must divide " + std::to_string(s.n_expert) + " experts and hold " +
               std::to_string(s.n_expert_used) + " of them");
  return Status::Ok();
}

Status validate(const SynthSpec& s) {
  auto bad = [](const std::string& m) { return invalid_argument("synth: " + m); };
  const bool ds2 = s.arch == "deepseek2";
  if (s.arch != "llama" && s.arch != "qwen2" && s.arch != "deepseek" && !ds2)
    return bad("unknown arch '" + s.arch + "' (llama, qwen2, deepseek, deepseek2)");
  if (s.n_embd <= 0 || s.n_layer <= 0 || s.n_head <= 0 || s.n_head_kv <= 0 || s.n_ff <= 0 || s.n_ctx <= 0 ||
      s.n_vocab < 0)
    return bad("n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx must be positive and n_vocab >= 0");
  if (!ds2) {
    if (s.n_embd % s.n_head != 0)
      return bad("n_embd " + std::to_string(s.n_embd) + " is not a multiple of n_head " + std::to_string(s.n_head));
    if (s.n_head % s.n_head_kv != 0)
      return bad("n_head " + std::to_string(s.n_head) + " is not a multiple of n_head_kv " +
                 std::to_string(s.n_head_kv));
    if ((s.n_embd / s.n_head) % 2 != 0)
      return bad("head dim " + std::to_string(s.n_embd / s.n_head) + " must be even");
  } else {
    if (s.kv_lora_rank <= 0 || s.qk_nope <= 0 || s.qk_rope <= 0 || s.qk_rope % 2 != 0 || s.v_head <= 0 ||
        s.q_lora_rank < 0)
      return bad("deepseek2 needs kv_lora_rank, qk_nope, v_head > 0, an even qk_rope > 0 and q_lora_rank >= 0");
  }
  if (s.arch == "deepseek" || ds2) FRUGAL_RETURN_IF_ERROR(validate_moe(s));
  if (!(s.weight_std >= 0.f) || !std::isfinite(s.weight_std)) return bad("weight_std must be finite and >= 0");
  return Status::Ok();
}

// Adds one lazily generated tensor. ne in ggml order; rows are generated in parallel on `pool`.
void add_random_tensor(GgufWriter& w, ThreadPool* pool, uint64_t seed, const std::string& name, DType type,
                       std::vector<int64_t> ne, Fill fill, float std) {
  const uint64_t tensor_seed = fnv1a(name) ^ (seed * 0x9e3779b97f4a7c15ull);
  const int64_t ne0 = ne[0];
  int64_t n_rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) n_rows *= ne[d];
  const size_t row_bytes = dtype_row_bytes(type, ne0);
  w.add_tensor_lazy(name, type, std::move(ne), [=](uint8_t* dst) {
    pool->parallel_range(n_rows, [&](int64_t r0, int64_t r1, int) {
      std::vector<float> row((size_t)ne0);
      for (int64_t r = r0; r < r1; ++r) {
        fill_row(tensor_seed, r, fill, std, row.data(), ne0);
        if (type == DType::F32) {
          std::memcpy(dst + (size_t)r * row_bytes, row.data(), row_bytes);
        } else {
          quantize_row_weights(type, row.data(), dst + (size_t)r * row_bytes, ne0);
        }
      }
    });
  });
}

// Adds the random tensors of one model to a writer, each with its weight type and fill.
struct Emitter {
  GgufWriter& w;
  ThreadPool* pool;
  const SynthSpec& spec;
  const TypePlan& plan;

  float matrix_std(int64_t ne0) const { return spec.fan_in_std ? 1.f / std::sqrt((float)ne0) : spec.weight_std; }
  // A 2-D {ne0, ne1} or 3-D {ne0, ne1, ne2} weight.
  void matrix(const std::string& name, const std::string& kind, int layer, int64_t ne0, int64_t ne1,
              int64_t ne2 = 0) const {
    std::vector<int64_t> ne = {ne0, ne1};
    if (ne2 > 0) ne.push_back(ne2);
    const DType t = choose_type(plan, kind, layer, spec.n_layer, ne0, spec.n_expert);
    add_random_tensor(w, pool, spec.seed, name, t, std::move(ne), Fill::kNormal, matrix_std(ne0));
  }
  void f32_matrix(const std::string& name, int64_t ne0, int64_t ne1) const {  // routers stay F32
    add_random_tensor(w, pool, spec.seed, name, DType::F32, {ne0, ne1}, Fill::kNormal, matrix_std(ne0));
  }
  void norm(const std::string& name, int64_t n) const {
    add_random_tensor(w, pool, spec.seed, name, DType::F32, {n}, spec.norm_jitter ? Fill::kJitter : Fill::kOnes, 0.f);
  }
  void bias(const std::string& name, int64_t n, float std) const {
    add_random_tensor(w, pool, spec.seed, name, DType::F32, {n}, Fill::kNormal, std);
  }
  void embeddings(int64_t E, int64_t V) const {
    const DType t = choose_type(plan, spec.tied_output ? "output" : "", -1, spec.n_layer, E, spec.n_expert);
    float sd = spec.weight_std;
    if (spec.fan_in_std) sd = spec.tied_output ? 3.f / std::sqrt((float)E) : 1.f;
    add_random_tensor(w, pool, spec.seed, "token_embd.weight", t, {E, V}, Fill::kNormal, sd);
  }
  void output(int64_t E, int64_t V) const {
    const DType t = choose_type(plan, "output", -1, spec.n_layer, E, spec.n_expert);
    const float sd = spec.fan_in_std ? 3.f / std::sqrt((float)E) : spec.weight_std;
    add_random_tensor(w, pool, spec.seed, "output.weight", t, {E, V}, Fill::kNormal, sd);
  }
};

void add_llama_attention(const Emitter& em, const std::string& p, int i) {
  const SynthSpec& s = em.spec;
  const int64_t E = s.n_embd, Egqa = (int64_t)(s.n_embd / s.n_head) * s.n_head_kv;
  em.matrix(p + "attn_q.weight", "", i, E, E);
  em.matrix(p + "attn_k.weight", "attn_k", i, E, Egqa);
  em.matrix(p + "attn_v.weight", "attn_v", i, E, Egqa);
  if (s.arch == "qwen2") {
    em.bias(p + "attn_q.bias", E, s.weight_std);
    em.bias(p + "attn_k.bias", Egqa, s.weight_std);
    em.bias(p + "attn_v.bias", Egqa, s.weight_std);
  }
  em.matrix(p + "attn_output.weight", "attn_output", i, E, E);
}

void add_mla_attention(const Emitter& em, const std::string& p, int i) {
  const SynthSpec& s = em.spec;
  const int64_t E = s.n_embd, H = s.n_head, hk = s.qk_nope + s.qk_rope, L = s.kv_lora_rank;
  if (s.q_lora_rank > 0) {
    em.matrix(p + "attn_q_a.weight", "", i, E, s.q_lora_rank);
    em.norm(p + "attn_q_a_norm.weight", s.q_lora_rank);
    em.matrix(p + "attn_q_b.weight", "", i, s.q_lora_rank, H * hk);
  } else {
    em.matrix(p + "attn_q.weight", "", i, E, H * hk);
  }
  em.matrix(p + "attn_kv_a_mqa.weight", "", i, E, L + s.qk_rope);
  em.norm(p + "attn_kv_a_norm.weight", L);
  if (s.mla_split) {
    em.matrix(p + "attn_k_b.weight", "", i, s.qk_nope, L, H);
    em.matrix(p + "attn_v_b.weight", "", i, L, s.v_head, H);
  } else {
    em.matrix(p + "attn_kv_b.weight", "attn_v", i, L, H * (s.qk_nope + s.v_head));
  }
  em.matrix(p + "attn_output.weight", "attn_output", i, H * s.v_head, E);
}

void add_ffn(const Emitter& em, const std::string& p, int i) {
  const SynthSpec& s = em.spec;
  const int64_t E = s.n_embd;
  const bool moe = (s.arch == "deepseek" || s.arch == "deepseek2") && i >= s.n_layer_dense_lead;
  if (!moe) {
    em.matrix(p + "ffn_gate.weight", "", i, E, s.n_ff);
    em.matrix(p + "ffn_up.weight", "", i, E, s.n_ff);
    em.matrix(p + "ffn_down.weight", "ffn_down", i, s.n_ff, E);
    return;
  }
  const int64_t X = s.n_expert, F = s.n_ff_exp, Fs = (int64_t)s.n_ff_exp * s.n_expert_shared;
  em.f32_matrix(p + "ffn_gate_inp.weight", E, X);
  if (s.arch == "deepseek2" && s.exp_probs_b) em.bias(p + "exp_probs_b.bias", X, 0.1f);
  em.matrix(p + "ffn_gate_exps.weight", "", i, E, F, X);
  em.matrix(p + "ffn_up_exps.weight", "", i, E, F, X);
  em.matrix(p + "ffn_down_exps.weight", "ffn_down", i, F, E, X);
  if (Fs > 0) {
    em.matrix(p + "ffn_gate_shexp.weight", "", i, E, Fs);
    em.matrix(p + "ffn_up_shexp.weight", "", i, E, Fs);
    em.matrix(p + "ffn_down_shexp.weight", "ffn_down", i, Fs, E);
  }
}

// Hyper-parameter keys as llama.cpp's converter writes them for each architecture.
void add_arch_keys(GgufWriter& w, const SynthSpec& s, int n_vocab) {
  const std::string a = s.arch + ".";
  const bool ds = s.arch == "deepseek", ds2 = s.arch == "deepseek2";
  // gguf-py writes vocab_size and rope.dimension_count for llama/deepseek*; qwen2 files omit them.
  if (s.arch != "qwen2") w.set_u32(a + "vocab_size", (uint32_t)n_vocab);
  w.set_u32(a + "context_length", (uint32_t)s.n_ctx);
  w.set_u32(a + "embedding_length", (uint32_t)s.n_embd);
  w.set_u32(a + "block_count", (uint32_t)s.n_layer);
  w.set_u32(a + "feed_forward_length", (uint32_t)s.n_ff);
  w.set_u32(a + "attention.head_count", (uint32_t)s.n_head);
  w.set_u32(a + "attention.head_count_kv", (uint32_t)(ds2 ? (s.mla_split ? 1 : s.n_head) : s.n_head_kv));
  w.set_f32(a + "rope.freq_base", s.rope_base);
  w.set_f32(a + "attention.layer_norm_rms_epsilon", s.rms_eps);
  if (s.arch == "llama" || ds) w.set_u32(a + "rope.dimension_count", (uint32_t)(s.n_embd / s.n_head));
  if (!ds && !ds2) return;
  w.set_u32(a + "expert_count", (uint32_t)s.n_expert);
  w.set_u32(a + "expert_used_count", (uint32_t)s.n_expert_used);
  w.set_u32(a + "leading_dense_block_count", (uint32_t)s.n_layer_dense_lead);
  w.set_u32(a + "expert_feed_forward_length", (uint32_t)s.n_ff_exp);
  w.set_u32(a + "expert_shared_count", (uint32_t)s.n_expert_shared);
  w.set_f32(a + "expert_weights_scale", s.expert_weights_scale);
  if (ds) {
    w.set_string(a + "rope.scaling.type", "none");
    return;
  }
  w.set_u32(a + "expert_group_count", (uint32_t)s.n_expert_groups);
  w.set_u32(a + "expert_group_used_count", (uint32_t)s.n_expert_groups_used);
  w.set_u32(a + "expert_gating_func", s.gate_sigmoid ? 2u : 1u);
  if (s.expert_weights_norm) w.set_bool(a + "expert_weights_norm", true);
  w.set_u32(a + "attention.q_lora_rank", (uint32_t)s.q_lora_rank);
  w.set_u32(a + "attention.kv_lora_rank", (uint32_t)s.kv_lora_rank);
  if (s.mla_split) {  // MQA over the latent: one KV head of kv_lora + rope, values kv_lora
    w.set_u32(a + "attention.key_length", (uint32_t)(s.kv_lora_rank + s.qk_rope));
    w.set_u32(a + "attention.value_length", (uint32_t)s.kv_lora_rank);
    w.set_u32(a + "attention.key_length_mla", (uint32_t)(s.qk_nope + s.qk_rope));
    w.set_u32(a + "attention.value_length_mla", (uint32_t)s.v_head);
  } else {
    w.set_u32(a + "attention.key_length", (uint32_t)(s.qk_nope + s.qk_rope));
    w.set_u32(a + "attention.value_length", (uint32_t)s.v_head);
  }
  w.set_u32(a + "rope.dimension_count", (uint32_t)s.qk_rope);
  if (s.yarn_factor > 1.f) {
    w.set_string(a + "rope.scaling.type", "yarn");
    w.set_f32(a + "rope.scaling.factor", s.yarn_factor);
    w.set_u32(a + "rope.scaling.original_context_length", (uint32_t)s.yarn_orig_ctx);
    w.set_f32(a + "rope.scaling.yarn_log_multiplier", s.yarn_log_mul);
  }
}

}  // namespace

Status write_synth_model(const SynthSpec& spec, const std::string& path) {
  FRUGAL_RETURN_IF_ERROR(validate(spec));
  FRUGAL_ASSIGN_OR_RETURN(TypePlan plan, parse_weight_type(spec.weight_type));
  GgufWriter w;
  w.set_string("general.architecture", spec.arch);
  w.set_string("general.name", "synth-" + spec.arch + "-" + spec.weight_type);
  w.set_u32("general.file_type", plan.file_type);
  if (plan.base != DType::F32) w.set_u32("general.quantization_version", 2);  // as llama-quantize writes

  int n_vocab = spec.n_vocab;
  if (!spec.vocab_from.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> vocab, GgufFile::open(spec.vocab_from));
    FRUGAL_ASSIGN_OR_RETURN(std::vector<std::string_view> tokens, vocab->get_string_array("tokenizer.ggml.tokens"));
    if (n_vocab == 0) n_vocab = (int)tokens.size();
    if (n_vocab != (int)tokens.size()) {
      return invalid_argument("synth: n_vocab " + std::to_string(n_vocab) + " differs from the " +
                              std::to_string(tokens.size()) + " tokens of " + spec.vocab_from);
    }
    w.copy_kvs(*vocab, "tokenizer.");
  } else {
    if (n_vocab == 0) n_vocab = kSyntheticVocabMin;
    if (n_vocab < kSyntheticVocabMin) {
      return invalid_argument("synth: n_vocab " + std::to_string(n_vocab) +
                              " is too small for the synthetic byte vocabulary (at least 259)");
    }
    add_synthetic_vocab(w, n_vocab);
  }
  add_arch_keys(w, spec, n_vocab);

  const int n_threads = spec.n_threads > 0 ? spec.n_threads : (int)std::max(1u, std::thread::hardware_concurrency());
  ThreadPool pool(n_threads);
  const Emitter em{w, &pool, spec, plan};
  const int64_t E = spec.n_embd, V = n_vocab;
  em.embeddings(E, V);
  for (int i = 0; i < spec.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    em.norm(p + "attn_norm.weight", E);
    if (spec.arch == "deepseek2") {
      add_mla_attention(em, p, i);
    } else {
      add_llama_attention(em, p, i);
    }
    em.norm(p + "ffn_norm.weight", E);
    add_ffn(em, p, i);
  }
  em.norm("output_norm.weight", E);
  if (!spec.tied_output) em.output(E, V);
  return w.write(path);
}

}  // namespace frugal
