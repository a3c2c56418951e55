#include "compress/convert_hf.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "backend/quant.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "compress/safetensors.h"
#include "gguf/gguf_writer.h"

namespace frugal {

namespace {

using nlohmann::json;

struct ArchInfo {
  const char* hf;
  const char* gguf;
  bool permute_qk;  // HF rotate-half -> GGUF NORM rope
};
constexpr ArchInfo kArchs[] = {
    {"LlamaForCausalLM", "llama", true},
    {"MistralForCausalLM", "llama", true},
    {"Qwen2ForCausalLM", "qwen2", false},
};

// The hyper-parameters the tensor map and the metadata need.
struct HParams {
  int64_t n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ff = 0, head_dim = 0, n_ctx = 0, n_vocab = 0;
  double rms_eps = 1e-6, rope_theta = 10000.0;
  bool tied = false;
};

StatusOr<int64_t> cfg_int(const std::string& where, const json& c, const char* key, int64_t dflt, bool required) {
  if (!c.contains(key) || c[key].is_null()) {
    if (required) return corrupt(where + ": missing '" + key + "'");
    return dflt;
  }
  if (!c[key].is_number_integer() || c[key].get<int64_t>() <= 0 || c[key].get<int64_t>() > (int64_t(1) << 32))
    return corrupt(where + ": '" + key + "' is not a positive integer");
  return c[key].get<int64_t>();
}

StatusOr<double> cfg_float(const std::string& where, const json& c, const char* key, double dflt) {
  if (!c.contains(key) || c[key].is_null()) return dflt;
  if (!c[key].is_number() || !(c[key].get<double>() > 0))
    return corrupt(where + ": '" + key + "' is not a positive number");
  return c[key].get<double>();
}

StatusOr<HParams> read_hparams(const std::string& where, const json& c) {
  HParams h;
  FRUGAL_ASSIGN_OR_RETURN(h.n_embd, cfg_int(where, c, "hidden_size", 0, true));
  FRUGAL_ASSIGN_OR_RETURN(h.n_layer, cfg_int(where, c, "num_hidden_layers", 0, true));
  FRUGAL_ASSIGN_OR_RETURN(h.n_head, cfg_int(where, c, "num_attention_heads", 0, true));
  FRUGAL_ASSIGN_OR_RETURN(h.n_head_kv, cfg_int(where, c, "num_key_value_heads", h.n_head, false));
  FRUGAL_ASSIGN_OR_RETURN(h.n_ff, cfg_int(where, c, "intermediate_size", 0, true));
  FRUGAL_ASSIGN_OR_RETURN(h.head_dim, cfg_int(where, c, "head_dim", h.n_embd / h.n_head, false));
  FRUGAL_ASSIGN_OR_RETURN(h.n_ctx, cfg_int(where, c, "max_position_embeddings", 2048, false));
  FRUGAL_ASSIGN_OR_RETURN(h.n_vocab, cfg_int(where, c, "vocab_size", 0, false));
  FRUGAL_ASSIGN_OR_RETURN(h.rms_eps, cfg_float(where, c, "rms_norm_eps", 1e-6));
  FRUGAL_ASSIGN_OR_RETURN(h.rope_theta, cfg_float(where, c, "rope_theta", 10000.0));
  h.tied = c.value("tie_word_embeddings", false);
  if (h.n_head % h.n_head_kv != 0)
    return corrupt(where + ": num_attention_heads " + std::to_string(h.n_head) +
                   " is not a multiple of num_key_value_heads " + std::to_string(h.n_head_kv));
  if (h.head_dim % 2 != 0) return corrupt(where + ": head dim " + std::to_string(h.head_dim) + " is odd");
  return h;
}

// {arch}.* keys. rope_scaling: none/default, linear, yarn; others unsupported.
Status write_hparams(const std::string& where, const json& c, const HParams& h, const std::string& arch,
                     GgufWriter* w) {
  const std::string a = arch + ".";
  w->set_u32(a + "context_length", (uint32_t)h.n_ctx);
  w->set_u32(a + "embedding_length", (uint32_t)h.n_embd);
  w->set_u32(a + "block_count", (uint32_t)h.n_layer);
  w->set_u32(a + "feed_forward_length", (uint32_t)h.n_ff);
  w->set_u32(a + "attention.head_count", (uint32_t)h.n_head);
  w->set_u32(a + "attention.head_count_kv", (uint32_t)h.n_head_kv);
  w->set_f32(a + "attention.layer_norm_rms_epsilon", (float)h.rms_eps);
  w->set_f32(a + "rope.freq_base", (float)h.rope_theta);
  w->set_u32(a + "rope.dimension_count", (uint32_t)h.head_dim);
  if (h.head_dim != h.n_embd / h.n_head) {
    w->set_u32(a + "attention.key_length", (uint32_t)h.head_dim);
    w->set_u32(a + "attention.value_length", (uint32_t)h.head_dim);
  }
  if (!c.contains("rope_scaling") || c["rope_scaling"].is_null()) return Status::Ok();
  const json& rs = c["rope_scaling"];
  if (!rs.is_object()) return corrupt(where + ": rope_scaling is not an object");
  const std::string type = rs.value("rope_type", rs.value("type", ""));
  if (type == "default" || type.empty()) return Status::Ok();
  if (type != "linear" && type != "yarn")
    return unsupported(where + ": rope_scaling type '" + type + "' is not supported (linear, yarn)");
  FRUGAL_ASSIGN_OR_RETURN(double factor, cfg_float(where + ": rope_scaling", rs, "factor", 1.0));
  w->set_string(a + "rope.scaling.type", type);
  w->set_f32(a + "rope.scaling.factor", (float)factor);
  if (type == "yarn") {
    FRUGAL_ASSIGN_OR_RETURN(int64_t orig,
                            cfg_int(where + ": rope_scaling", rs, "original_max_position_embeddings", h.n_ctx, false));
    w->set_u32(a + "rope.scaling.original_context_length", (uint32_t)orig);
  }
  return Status::Ok();
}

// One output tensor: where its data comes from and how it is transformed.
struct Job {
  std::string name;        // GGUF name
  const SafeTensor* src;   // HF tensor
  int64_t permute_heads;   // > 0: permute_rope_rows with this many heads
  std::vector<int64_t> ne; // GGUF order
  DType out;
};

DType out_type_for(const std::vector<int64_t>& ne, DType outtype) {
  if (ne.size() < 2) return DType::F32;
  if (outtype == DType::Q8_0 && ne[0] % 32 != 0) return DType::F16;
  return outtype;
}

// Builds the job list; checks shapes against the hyper-parameters and that every stored tensor is used.
Status plan_jobs(const SafetensorsCheckpoint& ck, const HParams& h, const ArchInfo& arch, DType outtype,
                 std::vector<Job>* jobs, std::vector<std::string>* notes) {
  std::set<const SafeTensor*> used;
  auto add = [&](const std::string& hf, const std::string& gguf, std::vector<int64_t> shape, int64_t permute,
                 bool required) -> Status {
    const SafeTensor* t = ck.find(hf);
    if (!t) return required ? not_found("checkpoint: tensor '" + hf + "' not found") : Status::Ok();
    if (t->shape != shape) {
      std::string got, want;
      for (int64_t d : t->shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
      for (int64_t d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
      return corrupt(t->file + ": tensor '" + hf + "' has shape [" + got + "], config.json implies [" + want + "]");
    }
    used.insert(t);
    std::vector<int64_t> ne(shape.rbegin(), shape.rend());
    jobs->push_back(Job{gguf, t, permute, ne, out_type_for(ne, outtype)});
    return Status::Ok();
  };
  const int64_t q_rows = h.n_head * h.head_dim, kv_rows = h.n_head_kv * h.head_dim;
  const bool bias_required = std::string(arch.gguf) == "qwen2";
  const SafeTensor* emb = ck.find("model.embed_tokens.weight");
  const SafeTensor* head = ck.find("lm_head.weight");
  const std::string tok_src = emb ? "model.embed_tokens.weight" : "lm_head.weight";
  if (!emb && !head) return not_found("checkpoint: neither model.embed_tokens.weight nor lm_head.weight found");
  FRUGAL_RETURN_IF_ERROR(add(tok_src, "token_embd.weight", {h.n_vocab, h.n_embd}, 0, true));
  if (!emb || emb == head || !head) notes->push_back("tied embeddings: output.weight not written (uses token_embd)");
  for (int64_t l = 0; l < h.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".", b = "blk." + std::to_string(l) + ".";
    const int64_t pq = arch.permute_qk ? h.n_head : 0, pk = arch.permute_qk ? h.n_head_kv : 0;
    FRUGAL_RETURN_IF_ERROR(add(p + "input_layernorm.weight", b + "attn_norm.weight", {h.n_embd}, 0, true));
    FRUGAL_RETURN_IF_ERROR(add(p + "self_attn.q_proj.weight", b + "attn_q.weight", {q_rows, h.n_embd}, pq, true));
    FRUGAL_RETURN_IF_ERROR(add(p + "self_attn.k_proj.weight", b + "attn_k.weight", {kv_rows, h.n_embd}, pk, true));
    FRUGAL_RETURN_IF_ERROR(add(p + "self_attn.v_proj.weight", b + "attn_v.weight", {kv_rows, h.n_embd}, 0, true));
    FRUGAL_RETURN_IF_ERROR(add(p + "self_attn.o_proj.weight", b + "attn_output.weight", {h.n_embd, q_rows}, 0, true));
    FRUGAL_RETURN_IF_ERROR(add(p + "self_attn.q_proj.bias", b + "attn_q.bias", {q_rows}, pq, bias_required));
    FRUGAL_RETURN_IF_ERROR(add(p + "self_attn.k_proj.bias", b + "attn_k.bias", {kv_rows}, pk, bias_required));
    FRUGAL_RETURN_IF_ERROR(add(p + "self_attn.v_proj.bias", b + "attn_v.bias", {kv_rows}, 0, bias_required));
    FRUGAL_RETURN_IF_ERROR(add(p + "self_attn.o_proj.bias", b + "attn_output.bias", {h.n_embd}, 0, false));
    FRUGAL_RETURN_IF_ERROR(add(p + "post_attention_layernorm.weight", b + "ffn_norm.weight", {h.n_embd}, 0, true));
    FRUGAL_RETURN_IF_ERROR(add(p + "mlp.gate_proj.weight", b + "ffn_gate.weight", {h.n_ff, h.n_embd}, 0, true));
    FRUGAL_RETURN_IF_ERROR(add(p + "mlp.up_proj.weight", b + "ffn_up.weight", {h.n_ff, h.n_embd}, 0, true));
    FRUGAL_RETURN_IF_ERROR(add(p + "mlp.down_proj.weight", b + "ffn_down.weight", {h.n_embd, h.n_ff}, 0, true));
  }
  FRUGAL_RETURN_IF_ERROR(add("model.norm.weight", "output_norm.weight", {h.n_embd}, 0, true));
  if (emb && head && emb != head)
    FRUGAL_RETURN_IF_ERROR(add("lm_head.weight", "output.weight", {h.n_vocab, h.n_embd}, 0, true));
  for (const std::string& n : ck.names()) {
    const SafeTensor* t = ck.find(n);
    if (used.count(t)) continue;
    if (n.size() >= 9 && n.compare(n.size() - 9, 9, ".inv_freq") == 0) continue;  // rotary buffer, recomputed
    return unsupported(t->file + ": tensor '" + n + "' has no GGUF equivalent for " + arch.hf);
  }
  return Status::Ok();
}

// Produces one tensor's output bytes into dst.
void produce(const Job& j, ThreadPool& pool, uint8_t* dst) {
  std::vector<float> x = j.src->to_f32();
  if (j.permute_heads > 0) {
    std::vector<float> y(x.size());
    const int64_t rows = j.ne.size() > 1 ? j.ne[1] : j.ne[0], cols = j.ne.size() > 1 ? j.ne[0] : 1;
    permute_rope_rows(x.data(), y.data(), j.permute_heads, rows, cols);
    x.swap(y);
  }
  const int64_t n = (int64_t)x.size();
  switch (j.out) {
    case DType::F32:
      std::memcpy(dst, x.data(), (size_t)n * 4);
      return;
    case DType::F16:
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t v = j.out == DType::F16 ? f32_to_fp16(x[(size_t)i]) : f32_to_bf16(x[(size_t)i]);
        std::memcpy(dst + 2 * i, &v, 2);
      }
      return;
    default: {
      const int64_t K = j.ne[0], rows = n / K;
      const size_t rb = dtype_row_bytes(j.out, K);
      pool.parallel_range(rows, [&](int64_t r0, int64_t r1, int) {
        for (int64_t r = r0; r < r1; ++r) quantize_row_weights(j.out, x.data() + r * K, dst + (size_t)r * rb, K);
      });
    }
  }
}

uint32_t file_type_of(DType t) {
  switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q8_0: return 7;
    default: return 32;  // BF16
  }
}

StatusOr<json> read_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path + ": cannot open (the input must be a Hugging Face checkpoint directory)");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt(path + ": not a JSON object");
  return j;
}

std::string base_name(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t s = dir.rfind('/');
  return s == std::string::npos ? dir : dir.substr(s + 1);
}

}  // namespace

void permute_rope_rows(const float* src, float* dst, int64_t n_head, int64_t n_rows, int64_t n_cols) {
  FRUGAL_CHECK(n_head > 0 && n_rows % (2 * n_head) == 0);
  const int64_t hd = n_rows / n_head, half = hd / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t s = 0; s < 2; ++s)
      for (int64_t j = 0; j < half; ++j) {
        const float* from = src + (h * hd + s * half + j) * n_cols;
        std::memcpy(dst + (h * hd + 2 * j + s) * n_cols, from, (size_t)n_cols * sizeof(float));
      }
}

StatusOr<DType> parse_convert_outtype(const std::string& s) {
  std::string l = s;
  for (char& c : l) c = (char)std::tolower((unsigned char)c);
  if (l == "f32") return DType::F32;
  if (l == "f16") return DType::F16;
  if (l == "bf16") return DType::BF16;
  if (l == "q8_0") return DType::Q8_0;
  return invalid_argument("--outtype '" + s + "': expected f32, f16, bf16 or q8_0");
}

std::vector<std::string> convert_supported_architectures() {
  std::vector<std::string> v;
  for (const ArchInfo& a : kArchs) v.push_back(a.hf);
  return v;
}

StatusOr<ConvertSummary> convert_hf_to_gguf(const std::string& hf_dir, const std::string& out_path,
                                            const ConvertOptions& opt) {
  FRUGAL_CHECK(opt.outtype == DType::F32 || opt.outtype == DType::F16 || opt.outtype == DType::BF16 ||
               opt.outtype == DType::Q8_0);
  const std::string cfg_path = hf_dir + "/config.json";
  FRUGAL_ASSIGN_OR_RETURN(json cfg, read_config(cfg_path));
  ConvertSummary sum;
  if (cfg.contains("architectures") && cfg["architectures"].is_array() && !cfg["architectures"].empty() &&
      cfg["architectures"][0].is_string())
    sum.hf_arch = cfg["architectures"][0].get<std::string>();
  const ArchInfo* arch = nullptr;
  for (const ArchInfo& a : kArchs)
    if (sum.hf_arch == a.hf) arch = &a;
  if (!arch) {
    std::string list;
    for (const ArchInfo& a : kArchs) list += (list.empty() ? "" : ", ") + std::string(a.hf);
    return unsupported(cfg_path + ": architecture '" + sum.hf_arch + "' is not supported (supported: " + list + ")");
  }
  sum.gguf_arch = arch->gguf;
  FRUGAL_ASSIGN_OR_RETURN(HParams h, read_hparams(cfg_path, cfg));
  GgufWriter w;
  w.set_string("general.architecture", arch->gguf);
  w.set_string("general.name", base_name(hf_dir));
  w.set_u32("general.file_type", file_type_of(opt.outtype));
  if (opt.outtype == DType::Q8_0) w.set_u32("general.quantization_version", 2);
  FRUGAL_RETURN_IF_ERROR(write_hparams(cfg_path, cfg, h, arch->gguf, &w));
  FRUGAL_RETURN_IF_ERROR(write_hf_tokenizer(hf_dir, h.n_vocab, arch->gguf, &w, &sum.tokenizer_model, &sum.n_vocab));
  if (h.n_vocab == 0) h.n_vocab = sum.n_vocab;
  w.set_u32(std::string(arch->gguf) + ".vocab_size", (uint32_t)h.n_vocab);

  FRUGAL_ASSIGN_OR_RETURN(auto ck, SafetensorsCheckpoint::open(hf_dir));
  std::vector<Job> jobs;
  FRUGAL_RETURN_IF_ERROR(plan_jobs(*ck, h, *arch, opt.outtype, &jobs, &sum.notes));
  ThreadPool pool(std::max(1, opt.threads));
  for (const Job& j : jobs) {
    w.add_tensor_lazy(j.name, j.out, j.ne, [&pool, &j](uint8_t* dst) { produce(j, pool, dst); });
    int64_t n = 1;
    for (int64_t d : j.ne) n *= d;
    sum.n_params += n;
    sum.bytes_out += (uint64_t)(n / dtype_block_size(j.out)) * (uint64_t)dtype_block_bytes(j.out);
    sum.type_counts[dtype_name(j.out)]++;
  }
  sum.n_tensors = (int)jobs.size();
  FRUGAL_RETURN_IF_ERROR(w.write(out_path));
  return sum;
}

std::string format_convert_summary(const ConvertSummary& s) {
  std::string r = "  " + s.hf_arch + " -> " + s.gguf_arch + ", tokenizer " + s.tokenizer_model + ", vocab " +
                  std::to_string(s.n_vocab) + "\n  " + std::to_string(s.n_tensors) + " tensors:";
  for (const auto& [t, n] : s.type_counts) r += " " + std::to_string(n) + " x " + t;
  char buf[128];
  std::snprintf(buf, sizeof buf, "\n  %.3f M parameters, %.2f MiB of tensor data\n", (double)s.n_params / 1e6,
                (double)s.bytes_out / (1024.0 * 1024.0));
  r += buf;
  for (const std::string& n : s.notes) r += "  note: " + n + "\n";
  return r;
}

}  // namespace frugal
