// WeightLoader: fetches the tensors an architecture needs from a GgufFile, checking presence, shape and
// that frugal can compute with the type. Errors name the file, the tensor and the problem, e.g.
//   "m.gguf: tensor 'blk.0.attn_q.weight' has shape {64, 32}, expected {64, 64}".
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "gguf/gguf_file.h"

namespace frugal {

class WeightLoader {
 public:
  explicit WeightLoader(const GgufFile& f) : f_(f) {}

  // A 2-D matrix {K, N} (N rows of K). Missing -> error unless optional (then data == nullptr).
  StatusOr<WeightView> matrix(const std::string& name, int64_t K, int64_t N, bool optional = false);
  // A stack of n_mat matrices {K, N, n_mat} (a 3-D tensor: routed experts, per-head MLA projections) as one
  // view of N * n_mat rows; matrix i is weight_rows(view, i * N, N). Missing -> error unless optional.
  StatusOr<WeightView> stacked(const std::string& name, int64_t K, int64_t N, int64_t n_mat, bool optional = false);
  // A 1-D vector {n} as f32 (converted and owned by the loader if stored in another type).
  // Missing -> error unless optional (then nullptr).
  StatusOr<const float*> vector(const std::string& name, int64_t n, bool optional = false);

  uint64_t bytes_used() const { return bytes_; }
  uint64_t params_used() const { return params_; }

 private:
  StatusOr<const GgufTensorInfo*> find(const std::string& name, std::vector<int64_t> shape, bool optional);

  const GgufFile& f_;
  std::deque<std::vector<float>> owned_;
  uint64_t bytes_ = 0;
  uint64_t params_ = 0;
};

// Rows [r0, r0 + n) of w as a view (same type and row length).
WeightView weight_rows(const WeightView& w, int64_t r0, int64_t n);

}  // namespace frugal
