// convert_hf_to_gguf: a Hugging Face checkpoint directory (config.json, safetensors weights, tokenizer.json)
// to a GGUF file that Model::load and Tokenizer::from_gguf read (what `frugal convert` runs).
//
// Architectures (config.json "architectures"[0]): LlamaForCausalLM and MistralForCausalLM -> GGUF "llama"
// (q/k rows permuted from HF's rotate-half layout to GGUF's adjacent-pair NORM RoPE layout, as llama.cpp's
// converter does), Qwen2ForCausalLM -> "qwen2" (NEOX RoPE: no permutation; q/k/v biases). Anything else is
// kUnsupported with the list of supported architectures.
//
// Tensors: HF names map to GGUF names (token_embd, blk.N.attn_{norm,q,k,v,output}, blk.N.ffn_{norm,gate,up,
// down}, output_norm, output); a stored tensor that maps to nothing (other than rotary inv_freq buffers)
// is an error naming it. Tied embeddings: when lm_head.weight is absent or is the same stored tensor as
// model.embed_tokens.weight (a safetensors __metadata__ alias), only token_embd is written (the loader ties
// output to it). 1-D tensors stay F32; 2-D tensors get the out type (Q8_0: rows not a multiple of 32 fall
// back to F16, as llama.cpp's converter does). Bytes are deterministic and do not depend on `threads`.
//
// Tokenizer (tokenizer.json + tokenizer_config.json + special_tokens_map.json):
//   * BPE with byte_fallback and a "▁" space convention (Llama/Mistral style) -> tokenizer.ggml.model
//     "llama" (SentencePiece-style), scores = -(rank of the merge producing the token), so that the SPM
//     merge loop (highest score first) replays HF's merges in rank order; tokens no merge produces score
//     -1e9. (llama.cpp's converter writes placeholder scores here, which do not reproduce HF's merges.)
//   * byte-level BPE (no byte_fallback) -> "gpt2" with merges; tokenizer.ggml.pre is chosen by
//     architecture ("qwen2" for Qwen2, "llama-bpe" otherwise), not by llama.cpp's hash of test strings.
//   Token types: unk UNKNOWN, special added tokens CONTROL, other added tokens USER_DEFINED, <0xXX> BYTE,
//   ids past the tokenizer's vocabulary up to config vocab_size "[PADn]" UNUSED. bos/eos/unk/pad ids,
//   add_bos/add_eos and chat_template come from tokenizer_config.json (config.json ids as fallback).
//
// Errors (Status) name the file and the field or tensor. Thread-safety: none needed (pure function).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"

namespace frugal {

class GgufWriter;

struct ConvertOptions {
  DType outtype = DType::F16;  // F32, F16, BF16 or Q8_0
  int threads = 1;
};

struct ConvertSummary {
  std::string hf_arch;    // e.g. LlamaForCausalLM
  std::string gguf_arch;  // llama | qwen2
  std::string tokenizer_model;
  int64_t n_vocab = 0;
  int n_tensors = 0;
  int64_t n_params = 0;
  uint64_t bytes_out = 0;  // tensor data bytes
  std::map<std::string, int> type_counts;
  std::vector<std::string> notes;
};

// "f32" | "f16" | "bf16" | "q8_0" (case-insensitive) -> DType; anything else kInvalidArgument.
StatusOr<DType> parse_convert_outtype(const std::string& s);
// HF architectures convert_hf_to_gguf accepts.
std::vector<std::string> convert_supported_architectures();

// Reads `hf_dir`, writes `out_path` (via .tmp + rename).
StatusOr<ConvertSummary> convert_hf_to_gguf(const std::string& hf_dir, const std::string& out_path,
                                            const ConvertOptions& opt);
std::string format_convert_summary(const ConvertSummary& s);

// Rows of a q or k projection [n_head * head_dim, n_cols] (row-major) from HF's rotate-half order to
// GGUF's NORM-RoPE order: within each head, row s*head_dim/2 + j moves to 2*j + s (llama.cpp's permute:
// reshape [n_head, 2, head_dim/2, n_cols], swap axes 1 and 2). n_cols = 1 for biases. `n_rows` must be a
// multiple of 2 * n_head.
void permute_rope_rows(const float* src, float* dst, int64_t n_head, int64_t n_rows, int64_t n_cols);

// Writes the tokenizer.* keys from the HF tokenizer files in `hf_dir` (exposed for tests). `n_vocab` is
// config.json's vocab_size (0: the tokenizer's own size); `gguf_arch` picks the gpt2 pre-tokenizer.
// Sets *tokenizer_model and *n_vocab_out.
Status write_hf_tokenizer(const std::string& hf_dir, int64_t n_vocab, const std::string& gguf_arch,
                          GgufWriter* w, std::string* tokenizer_model, int64_t* n_vocab_out);

}  // namespace frugal
