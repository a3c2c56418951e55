// Synthetic random-weight models: a GGUF of a given architecture and size, with the metadata keys and
// tensor names/shapes llama.cpp's converter writes, filled with seeded random weights.
//
// Used by tests (tiny models of each architecture, every weight format) and by benchmarks (a ~1.1B llama
// model) without shipping model files. Generation streams: each tensor is produced while the file is
// written (GgufWriter::add_tensor_lazy), row by row in parallel, so memory stays at one tensor's bytes
// plus one f32 row per thread, whatever the model size.
//
// Determinism: the weights of tensor NAME depend only on (seed, NAME, shape): a model written twice with
// the same spec is byte-identical, and models that differ only in weight_type hold the same f32 values
// before quantization (so a Q8_0 model dequantizes to about its F32 twin). Independent of n_threads.
//
// Weight types: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K apply to every 2-D tensor (1-D norms
// and biases are always F32). Q4_K_M / Q5_K_M follow llama-quantize's recipe: output.weight (or a tied
// token_embd) Q6_K; attn_v.weight and ffn_down.weight Q6_K in layers i with i < n/8 || i >= 7n/8 ||
// (i - n/8) % 3 == 2; every other 2-D tensor Q4_K (Q5_K). A tensor whose row length is not a multiple of
// its type's block size falls back: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace frugal {

struct SynthSpec {
  std::string arch = "llama";  // "llama" or "qwen2" (qwen2: q/k/v biases, NEOX rope by arch)
  int n_vocab = 0;             // 0 -> the vocabulary size of vocab_from (or of the synthetic vocab: 259)
  int n_embd = 64, n_layer = 2, n_head = 4, n_head_kv = 4, n_ff = 128, n_ctx = 2048;
  bool tied_output = false;  // no output.weight -> reuse token_embd
  float rope_base = 10000.f, rms_eps = 1e-5f;
  float weight_std = 0.02f;  // matrices and biases N(0, std^2); norms = 1 unless norm_jitter
  bool norm_jitter = false;  // norm weights uniform [0.8, 1.2] (makes a skipped norm visible)
  uint64_t seed = 1;
  std::string weight_type = "F32";  // see the header comment
  // GGUF whose tokenizer.* keys are copied (e.g. ../shared/vocab/ggml-vocab-deepseek-llm.gguf,
  // ../shared/models/stories260K.gguf); empty -> a minimal synthetic SPM byte vocabulary: <unk> <s> </s>,
  // the 256 byte tokens <0x00>..<0xFF>, then (if n_vocab is larger) distinct lowercase pieces.
  std::string vocab_from;
  int n_threads = 0;  // generation threads; 0 -> all hardware threads
};

// Writes the model to `path` (via path + ".tmp", renamed at the end). Errors: an invalid spec
// (invalid_argument naming the field), an unreadable vocab_from, an I/O failure naming the path.
Status write_synth_model(const SynthSpec& spec, const std::string& path);

}  // namespace frugal
