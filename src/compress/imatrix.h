// Importance matrix ("imatrix"): per weight tensor, the mean of x^2 per input column over calibration
// activations (per expert/slice for 3-D tensors). Collected by ObservingBackend (backend/observing_backend.h),
// stored in llama.cpp's legacy imatrix.dat format so llama-quantize reads ours and we read theirs, and used by
// the importance-weighted quantizers (compress/quantize.h).
//
// Legacy imatrix.dat layout (little-endian), as llama-imatrix writes it:
//   i32 n_entries
//   n_entries x { i32 len; char name[len]; i32 ncall; i32 nval; f32 values[nval] }
//   i32 last_chunk; i32 len; char dataset[len]        (optional trailer)
// values[i] = mean(x^2) * ncall (the reader divides by ncall); nval = K * n_slices, slice-major.
// An expert that saw no rows stores 1.0 * ncall (llama.cpp's "partial data" convention).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backend/observing_backend.h"
#include "base/status.h"

namespace frugal {

class GgufFile;

// Every tensor of `f` with at least 2 dimensions, as ranges for ObservingBackend (n_slices = ne[2] for a
// 3-D tensor).
std::vector<ObservedTensor> observed_tensors(const GgufFile& f);

struct ImatrixEntry {
  int32_t ncall = 0;          // chunks the statistics were collected over (>= 1 when written by us)
  std::vector<float> values;  // mean x^2 per column, [n_slices * K] slice-major (already divided by ncall)
};

struct Imatrix {
  std::map<std::string, ImatrixEntry> entries;  // by tensor name, e.g. "blk.0.attn_q.weight"
  int32_t chunks = 0;                           // chunks processed (trailer), 0 if absent
  std::string dataset;                          // calibration file name (trailer), empty if absent

  const ImatrixEntry* find(const std::string& name) const {
    auto it = entries.find(name);
    return it == entries.end() ? nullptr : &it->second;
  }
};

// Converts collected statistics to an Imatrix (mean of x^2 per column; 1.0 for slices with no rows;
// tensors whose every slice saw nothing are left out). `chunks` becomes each entry's ncall and the trailer.
Imatrix imatrix_from_stats(const std::map<std::string, ActivationStats>& stats, int32_t chunks,
                           const std::string& dataset);

// Writes `m` in the legacy format (entries in name order; deterministic bytes). Errors name the path.
Status write_imatrix_dat(const Imatrix& m, const std::string& path);
std::vector<uint8_t> imatrix_dat_bytes(const Imatrix& m);
// Reads a legacy imatrix.dat; errors name the path and what is wrong (truncated, negative sizes, ...).
StatusOr<Imatrix> read_imatrix_dat(const std::string& path);
StatusOr<Imatrix> parse_imatrix_dat(const uint8_t* data, size_t size, const std::string& name);

}  // namespace frugal
