// Quantization recipe: which type each tensor of a model gets for a target such as Q4_K_M. One function
// shared by `frugal quantize` (compress/quantize.h) and `frugal synth` (model/synth.cpp), following
// llama.cpp's llama_tensor_get_type for the types frugal writes. The rules, for a non-pure recipe:
//
//   * only tensors with >= 2 dims whose name ends in "weight" are converted, never *_norm.weight or
//     ffn_gate_inp.weight (MoE routers), and output.weight not with --leave-output; the rest keep their type
//   * output.weight (token_embd.weight when there is no output.weight) -> Q6_K, or Q8_0 when its row
//     length is not a multiple of 256 or the target is Q8_0 (every quantized target, as llama.cpp)
//   * Q4_K_M / Q5_K_M: attn_v-like (attn_v, attn_qkv, attn_kv_b) number i of n and ffn_down* of layer i of
//     n_layer -> Q6_K when use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2;
//     attn_qkv -> Q5_K (Q4_K_M) / Q6_K (Q5_K_M)
//   * Q4_K_S: attn_v-like number i < 4 -> Q5_K; ffn_down* of layers i < n_layer/8 -> Q5_K
//   * 8-expert models: attn_v and attn_k -> Q8_0; attn_output -> Q5_K for Q4_K_S/Q4_K_M
//   * Q4_0 / Q5_0 with an imatrix: ffn_down* of layers i < n_layer/8 -> Q4_1 / Q5_1
//   * row length not a multiple of the type's block: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0; a 32-block
//     type that still does not fit -> F16
// A pure recipe (--pure, or synth's single types) gives every converted tensor the base type (with the
// row-length fallback). --override patterns are applied by the caller before this (compress/quantize.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "tensor/dtype.h"

namespace frugal {

enum class QuantMix { kNone, kQ4_K_S, kQ4_K_M, kQ5_K_S, kQ5_K_M };

struct QuantRecipe {
  std::string name;          // as given, upper case: "Q4_K_M"
  DType base = DType::F32;   // bulk type
  uint32_t file_type = 0;    // general.file_type (llama_ftype)
  QuantMix mix = QuantMix::kNone;
  bool pure = false;         // every converted tensor gets `base`
};

// F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K IQ4_NL Q4_K_S Q4_K_M Q5_K_S Q5_K_M (case-insensitive).
StatusOr<QuantRecipe> parse_quant_recipe(const std::string& name);
// The list above, space-separated (for help and error messages).
std::string quant_recipe_names();

struct RecipeModel {
  int n_layer = 0;              // blocks (blk.N)
  int n_expert = 0;             // routed experts (0 or 1: dense)
  int n_attn_v = 0;             // attn_v-like tensors in the file (attn_v, attn_qkv, attn_kv_b)
  bool tied_embeddings = false; // no output.weight: token_embd is also the output
  bool has_imatrix = false;
  bool leave_output = false;
};

// One tensor: `i_attn_v` is its index among the attn_v-like tensors in file order (-1 otherwise).
struct RecipeTensor {
  std::string_view name;
  int n_dims = 2;
  int64_t ne0 = 0;
  int i_attn_v = -1;
};

// Whether the recipe converts this tensor at all (false: it keeps its stored type).
bool recipe_converts(const RecipeModel& m, const RecipeTensor& t);
// Target type of a tensor the recipe converts.
DType recipe_tensor_type(const QuantRecipe& r, const RecipeModel& m, const RecipeTensor& t);
// The row-length fallback alone (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16).
DType recipe_fit_row(DType t, int64_t ne0);
// True for attn_v.weight, attn_qkv.weight, attn_kv_b.weight names.
bool recipe_is_attn_v(std::string_view name);
// N of "blk.N." or -1.
int recipe_layer(std::string_view name);

}  // namespace frugal
