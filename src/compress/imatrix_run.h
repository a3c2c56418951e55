// compute_imatrix: runs a model over calibration tokens and collects the importance matrix (what
// llama-imatrix does): the tokens are cut into chunks of n_ctx (a trailing partial chunk is dropped, as
// llama-imatrix does), each chunk starts from an empty KV cache with its first token replaced by BOS when
// the model uses one, and is fed in batches of n_batch tokens through an ObservingBackend around `backend`.
// Every matmul weight of the model file is observed (per expert for MoE stacks). Deterministic for a given
// backend and thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "compress/imatrix.h"

namespace frugal {

class Model;

struct ImatrixRunOptions {
  int64_t n_ctx = 512;
  int64_t n_batch = 512;
  int64_t n_chunks = -1;   // -1: every full chunk
  int32_t bos = -1;        // token placed first in each chunk; -1: none
  std::string dataset;     // stored in the file's trailer
  // Called after each chunk with (done, total).
  std::function<void(int64_t, int64_t)> on_chunk;
};

// Errors: fewer tokens than one chunk, n_ctx above the model's context, forward errors.
StatusOr<Imatrix> compute_imatrix(Model& model, Backend& backend, const std::vector<int32_t>& tokens,
                                  const ImatrixRunOptions& opt);

}  // namespace frugal
