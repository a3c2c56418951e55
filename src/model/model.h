// Model: a loaded GGUF model of one architecture, ready to run forward passes on a Backend.
//
// Usage:
//   FRUGAL_ASSIGN_OR_RETURN(auto model, Model::load("m.gguf", {}));
//   KvCache kv(model->config(), /*n_ctx=*/2048, DType::F32);
//   std::vector<float> logits(T * model->config().n_vocab);
//   model->forward(*backend, kv, tokens, positions, T, logits.data(), LogitsMode::kAll);
//
// Weights stay memory-mapped in the GGUF file (zero copy). Each architecture lives in its own file
// (model/llama.cpp, ...) with its own weight struct; Model::load picks it from general.architecture.
// Thread-safety: forward() is called by one thread at a time (the engine thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "gguf/gguf_file.h"
#include "model/batch.h"
#include "model/config.h"
#include "model/kv_cache.h"

namespace frugal {

class MoeStats;  // model/moe.h

enum class LogitsMode {
  kLast,  // logits[V] for the last token of the batch
  kAll,   // logits[T, V] for every token
};

class Model {
 public:
  virtual ~Model() = default;

  // Opens, validates (every tensor the architecture needs present with the right shape and a supported
  // type) and maps `path`. Unknown architectures get an error listing the supported ones.
  static StatusOr<std::unique_ptr<Model>> load(const std::string& path);
  // Same, with the file mapped or read into memory as `options` says (bit-identical results either way).
  static StatusOr<std::unique_ptr<Model>> load(const std::string& path, const LoadOptions& options);
  // Architectures Model::load accepts, e.g. {"llama", "qwen2"}.
  static std::vector<std::string> supported_architectures();

  const ModelConfig& config() const { return config_; }
  const GgufFile& gguf() const { return *file_; }

  // Runs T tokens of one sequence: tokens[t] at position pos[t] (positions continue the cache:
  // pos[0] == kv.n_past() for plain generation). Appends their K/V to `kv` (storage row = position) and
  // advances kv.n_past(). Errors: positions out of the cache, token ids out of the vocabulary.
  Status forward(Backend& backend, KvCache& kv, const int32_t* tokens, const int32_t* pos, int64_t T, float* logits,
                 LogitsMode mode);

  // Runs one flattened multi-sequence batch: stores every token's K/V at its slot and writes
  // logits[n_logits, V] for batch.logit_rows. A sequence's results do not depend on the rest of the batch.
  // Does not touch kv.n_past() (the caller owns the bookkeeping). Errors: token ids outside the
  // vocabulary, slots outside the storage, an empty batch.
  virtual Status forward_batch(Backend& backend, KvCache& kv, const Batch& batch, float* logits) = 0;

  // Bytes of weights a single decode step reads (for bandwidth figures). MoE models: every tensor except
  // the routed experts, plus n_expert_used of the n_expert routed experts of each MoE layer.
  virtual uint64_t weight_bytes() const = 0;
  // All parameters in the file that the model uses (MoE: every expert).
  virtual uint64_t n_params() const = 0;
  // Per-layer, per-expert routing counters and expert sizes of MoE architectures (deepseek, deepseek2);
  // nullptr for dense models. Counters advance during forward passes; readable from any thread.
  virtual const MoeStats* moe_stats() const { return nullptr; }

 protected:
  ModelConfig config_;
  std::unique_ptr<GgufFile> file_;
};

}  // namespace frugal
