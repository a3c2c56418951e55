// N:M structured pruning of GGUF models (frugal prune). Per group of M consecutive weights along a row
// (the input dimension) the N with the highest importance are kept:
//   magnitude: importance = |w|
//   wanda:     importance = |w| * ||x_j||_2, x_j = input column j's activations over calibration text
// Pruned matrices are written in an N:M sparse type (tensor/sparse_nm.h, docs/SPARSITY.md) over the
// base format, or with dense_out in the base format itself (zeros in place; llama.cpp loads it). The
// sparse file and the dense-out file hold the same numbers: expanding a sparse row gives the dense-out
// row byte for byte.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"

namespace frugal {

enum class PruneMethod { kMagnitude, kWanda };

// Keep masks for one row of n elements (n % 32 == 0): masks[b] bit j = element 32 b + j kept. Exactly
// n_keep of every m consecutive elements, those with the largest importance; ties keep the lower index.
void nm_keep_masks(const float* importance, int64_t n, int n_keep, int m, uint32_t* masks);

// Importance of a row: |w_j| (col_sq == nullptr) or |w_j| * sqrt(col_sq[j]) (Wanda; col_sq = sum or
// mean of x_j^2 over the calibration activations -- a common factor does not change the choice).
void prune_importance(const float* w, const float* col_sq, int64_t n, float* out);

struct PruneOptions {
  int n = 2, m = 4;
  PruneMethod method = PruneMethod::kMagnitude;
  // Tensors pruned: names matching `only` (default: attention and FFN matrices), minus those matching
  // `skip` (default none). ECMAScript regexes, searched (not anchored).
  std::string only;
  std::string skip;
  bool dense_out = false;
  // Base type of every float matrix written (pruned or not): Q8_0, Q4_0 or F16. F32 / DType(~0u):
  // the input's type when it is one of those, else Q8_0.
  DType type = (DType)~0u;
  int threads = 1;
  // Wanda: per tensor name, sum (or mean) of x_j^2 per input column j (size ne0; 3-D tensors:
  // n_slices * ne0, slice-major). Tensors without an entry fall back to magnitude (reported).
  std::map<std::string, std::vector<float>> col_sq;
};

struct PruneTensorReport {
  std::string name;
  std::string cls;  // attn, ffn, output, token_embd, norm, other
  DType in_type, out_type;
  int64_t elements = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  int64_t zeros_out = 0;  // elements that are 0 in the written tensor (pruned or quantized to 0)
  bool pruned = false;
  bool wanda = false;     // pruned with activation norms
};

struct PruneReport {
  std::vector<PruneTensorReport> tensors;
  std::vector<std::string> warnings;
};

// The default `only` regex (attention and FFN weight matrices, incl. MoE experts and MLA projections).
const char* prune_default_only();

// Reads `in`, writes `out` (GGUF). Errors name the file/tensor.
Status prune_gguf(const std::string& in, const std::string& out, const PruneOptions& opt, PruneReport* report);

// Human-readable per-class summary (sizes, bytes per weight, sparsity) of a report.
std::string prune_summary(const PruneReport& r);

}  // namespace frugal
