#include "model/quant_recipe.h"

#include <cctype>
#include <cstdlib>

namespace frugal {

namespace {

struct Entry {
  const char* name;
  DType type;
  QuantMix mix;
  uint32_t ftype;
};
constexpr Entry kEntries[] = {
    {"F32", DType::F32, QuantMix::kNone, 0},       {"F16", DType::F16, QuantMix::kNone, 1},
    {"BF16", DType::BF16, QuantMix::kNone, 32},    {"Q8_0", DType::Q8_0, QuantMix::kNone, 7},
    {"Q4_0", DType::Q4_0, QuantMix::kNone, 2},     {"Q4_1", DType::Q4_1, QuantMix::kNone, 3},
    {"Q5_0", DType::Q5_0, QuantMix::kNone, 8},     {"Q5_1", DType::Q5_1, QuantMix::kNone, 9},
    {"Q4_K", DType::Q4_K, QuantMix::kNone, 14},    {"Q5_K", DType::Q5_K, QuantMix::kNone, 16},
    {"Q6_K", DType::Q6_K, QuantMix::kNone, 18},    {"IQ4_NL", DType::IQ4_NL, QuantMix::kNone, 25},
    {"Q4_K_S", DType::Q4_K, QuantMix::kQ4_K_S, 14}, {"Q4_K_M", DType::Q4_K, QuantMix::kQ4_K_M, 15},
    {"Q5_K_S", DType::Q5_K, QuantMix::kQ5_K_S, 16}, {"Q5_K_M", DType::Q5_K, QuantMix::kQ5_K_M, 17},
};

bool ends_with(std::string_view s, std::string_view suf) {
  return s.size() >= suf.size() && s.substr(s.size() - suf.size()) == suf;
}
bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

bool is_output(const RecipeModel& m, std::string_view name) {
  return name == "output.weight" || (m.tied_embeddings && name == "token_embd.weight");
}

}  // namespace

StatusOr<QuantRecipe> parse_quant_recipe(const std::string& name) {
  std::string up;
  for (char c : name) up += (char)std::toupper((unsigned char)c);
  // llama-quantize reads "Q4_K" / "Q5_K" as the _M mixes; frugal keeps them as single types (the
  // non-pure rules still give the output Q6_K) with synth's file types (Q4_K_S / Q5_K_S numbers).
  for (const Entry& e : kEntries) {
    if (up != e.name) continue;
    QuantRecipe r;
    r.name = up;
    r.base = e.type;
    r.mix = e.mix;
    r.file_type = e.ftype;
    return r;
  }
  return invalid_argument("unknown quantization type '" + name + "' (one of " + quant_recipe_names() + ")");
}

std::string quant_recipe_names() {
  std::string all;
  for (const Entry& e : kEntries) all += std::string(all.empty() ? "" : " ") + e.name;
  return all;
}

bool recipe_is_attn_v(std::string_view name) {
  return contains(name, "attn_v.weight") || contains(name, "attn_qkv.weight") || contains(name, "attn_kv_b.weight");
}

int recipe_layer(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  int v = 0;
  size_t i = 4;
  if (i >= name.size() || !std::isdigit((unsigned char)name[i])) return -1;
  for (; i < name.size() && std::isdigit((unsigned char)name[i]); ++i) v = v * 10 + (name[i] - '0');
  return i < name.size() && name[i] == '.' ? v : -1;
}

bool recipe_converts(const RecipeModel& m, const RecipeTensor& t) {
  if (t.n_dims < 2 || !ends_with(t.name, "weight")) return false;
  if (contains(t.name, "_norm.weight") || contains(t.name, "ffn_gate_inp.weight")) return false;
  if (m.leave_output && t.name == "output.weight") return false;
  return true;
}

DType recipe_fit_row(DType t, int64_t ne0) {
  if (ne0 % dtype_block_size(t) == 0) return t;
  switch (t) {
    case DType::Q4_K: t = DType::Q5_0; break;
    case DType::Q5_K: t = DType::Q5_1; break;
    case DType::Q6_K: t = DType::Q8_0; break;
    default: break;
  }
  return ne0 % dtype_block_size(t) == 0 ? t : DType::F16;
}

DType recipe_tensor_type(const QuantRecipe& r, const RecipeModel& m, const RecipeTensor& t) {
  DType ty = r.base;
  if (r.pure || r.base == DType::F32 || r.base == DType::F16 || r.base == DType::BF16) return recipe_fit_row(ty, t.ne0);
  const std::string_view n = t.name;
  const int layer = recipe_layer(n);
  const bool q4k = r.mix == QuantMix::kQ4_K_M || r.mix == QuantMix::kQ4_K_S;
  if (is_output(m, n)) {
    ty = (t.ne0 % 256 != 0 || ty == DType::Q8_0) ? DType::Q8_0 : DType::Q6_K;
  } else if (recipe_is_attn_v(n)) {
    if (contains(n, "attn_qkv.weight") && r.mix == QuantMix::kQ4_K_M) ty = DType::Q5_K;
    else if (contains(n, "attn_qkv.weight") && r.mix == QuantMix::kQ5_K_M) ty = DType::Q6_K;
    else if ((r.mix == QuantMix::kQ4_K_M || r.mix == QuantMix::kQ5_K_M) && use_more_bits(t.i_attn_v, m.n_attn_v))
      ty = DType::Q6_K;
    else if (r.mix == QuantMix::kQ4_K_S && t.i_attn_v < 4) ty = DType::Q5_K;
    if (m.n_expert == 8 && !contains(n, "attn_qkv.weight")) ty = DType::Q8_0;
  } else if (contains(n, "attn_k.weight")) {
    if (m.n_expert == 8) ty = DType::Q8_0;
  } else if (contains(n, "ffn_down") && layer >= 0) {
    const int nl = m.n_layer;
    if ((r.mix == QuantMix::kQ4_K_M || r.mix == QuantMix::kQ5_K_M) && use_more_bits(layer, nl)) ty = DType::Q6_K;
    else if (r.mix == QuantMix::kQ4_K_S && layer < nl / 8) ty = DType::Q5_K;
    else if (m.has_imatrix && layer < nl / 8 && r.mix == QuantMix::kNone && r.base == DType::Q4_0) ty = DType::Q4_1;
    else if (m.has_imatrix && layer < nl / 8 && r.mix == QuantMix::kNone && r.base == DType::Q5_0) ty = DType::Q5_1;
  } else if (contains(n, "attn_output.weight")) {
    if (m.n_expert == 8 && q4k) ty = DType::Q5_K;
  }
  return recipe_fit_row(ty, t.ne0);
}

}  // namespace frugal
