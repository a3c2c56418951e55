// quantize_model: converts a GGUF model to another weight format (what `frugal quantize` runs).
//
// Per tensor the target type comes from the shared recipe (model/quant_recipe.h) unless an --override
// pattern (std::regex_search on the tensor name, first match wins) names one; tensors the recipe does not
// convert (1-D, norms, MoE routers, output.weight with leave_output) are copied byte for byte. Sources in
// F32/F16/BF16 are converted directly; already-quantized sources are dequantized and re-quantized (a
// warning in the summary: the error adds up). With an imatrix the importance-weighted quantizers are used
// (quantize_row_weights_imatrix, per expert slice for 3-D tensors); entries of the wrong size are ignored
// with a warning.
//
// Streaming: the input stays memory-mapped and each output tensor is produced while it is written, so
// memory holds one tensor's output at most. Rows are spread over `threads` (results do not depend on the
// thread count: each row is quantized on its own). Every metadata key is copied; general.file_type and
// general.quantization_version are set; general.alignment is kept. Output bytes are deterministic.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "compress/imatrix.h"
#include "tensor/dtype.h"

namespace frugal {

class GgufFile;

struct QuantizeOptions {
  std::string type;  // recipe name: Q4_K_M, Q8_0, ... (quant_recipe_names())
  bool pure = false;
  bool leave_output = false;
  std::vector<std::pair<std::string, std::string>> overrides;  // (regex, type name)
  const Imatrix* imatrix = nullptr;                             // not owned; may be null
  int threads = 1;
  bool progress = false;  // per-tensor progress line on stderr
};

struct TensorPlan {
  std::string name;
  DType from = DType::F32;
  DType to = DType::F32;
  bool converted = false;     // false: bytes copied unchanged
  bool uses_imatrix = false;  // importance-weighted quantizer with an imatrix entry
};

struct QuantizeSummary {
  std::vector<TensorPlan> tensors;
  std::map<std::string, int> type_counts;  // output type name -> tensors
  uint64_t bytes_in = 0, bytes_out = 0;     // tensor data bytes
  int64_t n_params = 0;
  std::vector<std::string> warnings;
  double bpw_in() const { return n_params ? 8.0 * (double)bytes_in / (double)n_params : 0; }
  double bpw_out() const { return n_params ? 8.0 * (double)bytes_out / (double)n_params : 0; }
};

// Types every tensor of `in` would get (no data touched). Errors: unknown type names, bad regexes.
StatusOr<QuantizeSummary> plan_quantization(const GgufFile& in, const QuantizeOptions& opt);
// Plans, converts and writes `out_path` (via a .tmp file and rename). Errors name the file.
StatusOr<QuantizeSummary> quantize_model(const std::string& in_path, const std::string& out_path,
                                         const QuantizeOptions& opt);
// Human-readable summary: per-type counts, size before -> after, bits per weight, warnings.
std::string format_quantize_summary(const QuantizeSummary& s);

}  // namespace frugal
