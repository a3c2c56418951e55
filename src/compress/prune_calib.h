// Wanda activation statistics for frugal prune: runs a model over calibration text and returns, per
// weight matrix, the sum of x_j^2 over every activation row multiplied with it (per input column j;
// 3-D expert/head stacks slice-major), collected by backend/observing_backend.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace frugal {

// model_path: the model to prune (any type frugal runs); text_path: calibration text. The text is
// tokenized (BOS per chunk when the vocabulary adds one) and fed in chunks of n_ctx tokens (at most
// max_chunks), each in a fresh KV cache. Slices that saw no rows get 1.0 (no preference).
// Errors name the file.
Status prune_collect_wanda_stats(const std::string& model_path, const std::string& text_path, int64_t n_ctx,
                                 int64_t max_chunks, int threads, std::map<std::string, std::vector<float>>* out);

}  // namespace frugal
