// Importance matrix ("imatrix"): per weight tensor, the mean of x^2 per input column over calibration
// activations (per expert/slice for 3-D tensors). Collected by ObservingBackend (backend/observing_backend.h),
// stored in either of llama.cpp's two imatrix formats (GGUF, llama-imatrix's default, or the legacy
// imatrix.dat) so llama-quantize reads ours and we read theirs, and used by the importance-weighted quantizers
// (compress/quantize.h).
//
// GGUF imatrix (imatrix_gguf.cpp): a GGUF v3 file with
//   general.type = "imatrix"; imatrix.datasets = [string...]; imatrix.chunk_count (u32);
//   imatrix.chunk_size (u32, tokens per chunk)
//   per weight NAME, in name order: NAME.in_sum2  f32 {nval / nmat, nmat}: sum of x^2 per column, per slice
//                                   NAME.counts   f32 {1, nmat}: activation rows seen per slice
// nmat is the number of slices (experts) or 1 (one count shared by all nval values); mean = in_sum2 / count.
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
  // Activation rows seen, per slice ([n_slices]) or one shared by all values ([1]); empty when unknown
  // (read from imatrix.dat, which keeps only means). A slice with count 0 has values 1.0.
  std::vector<int64_t> counts;
};

struct Imatrix {
  std::map<std::string, ImatrixEntry> entries;  // by tensor name, e.g. "blk.0.attn_q.weight"
  int32_t chunks = 0;                           // chunks processed (trailer / imatrix.chunk_count), 0 if absent
  int32_t chunk_size = 0;                       // tokens per chunk (imatrix.chunk_size), 0 if unknown (.dat)
  std::vector<std::string> datasets;            // calibration file names (imatrix.datasets / the .dat trailer)

  const ImatrixEntry* find(const std::string& name) const {
    auto it = entries.find(name);
    return it == entries.end() ? nullptr : &it->second;
  }
};

// Converts collected statistics to an Imatrix (mean of x^2 per column; 1.0 for slices with no rows;
// tensors whose every slice saw nothing are left out; counts = rows per slice). `chunks` becomes each
// entry's ncall and the trailer; chunk_size is left 0 for the caller to set.
Imatrix imatrix_from_stats(const std::map<std::string, ActivationStats>& stats, int32_t chunks,
                           const std::string& dataset);

// Adds `from` (read from `from_name`) to `into`, as llama-imatrix --in-file combines files: per tensor and
// slice, means weighted by the activation rows behind them (counts add); where either side has no counts
// (a .dat input) by the chunks behind them (ncall; the result then has no counts). A tensor only in one side
// is kept as it is; chunks add, datasets are appended, chunk_size is kept from `into` unless it is 0.
// Errors (into unchanged): a tensor with a different number of values or slices, naming from_name.
Status merge_imatrix(Imatrix* into, const Imatrix& from, const std::string& from_name);

// Writes `m` in the legacy format (entries in name order; deterministic bytes; the datasets joined by
// ", " into the trailer's one name). Errors name the path.
Status write_imatrix_dat(const Imatrix& m, const std::string& path);
std::vector<uint8_t> imatrix_dat_bytes(const Imatrix& m);
// Reads a legacy imatrix.dat; errors name the path and what is wrong (truncated, negative sizes, ...).
StatusOr<Imatrix> read_imatrix_dat(const std::string& path);
StatusOr<Imatrix> parse_imatrix_dat(const uint8_t* data, size_t size, const std::string& name);

// GGUF imatrix. Writing: entries in name order; in_sum2 = value * count computed in double and rounded to
// f32 (a slice with count 0 writes 0); entries without counts (from .dat) write one count of
// ncall * max(chunk_size, 1) so that in_sum2 / count gives back the mean. Names of 56+ bytes (no room for
// ".in_sum2" within GGUF's 64-byte limit) are an error naming the tensor.
Status write_imatrix_gguf(const Imatrix& m, const std::string& path);
StatusOr<std::vector<uint8_t>> imatrix_gguf_bytes(const Imatrix& m);
// Reading: needs imatrix.chunk_count, imatrix.chunk_size and imatrix.datasets (as llama-quantize does),
// general.type "imatrix" when present, an F32 NAME.counts for every F32 NAME.in_sum2 (and back) with
// n(in_sum2) a multiple of n(counts), finite sums and finite counts >= 0 (rounded to integers). values =
// in_sum2 / count in f32; a slice whose count is 0 gets 1.0 (llama-quantize's rule for experts never routed
// to: neutral importance). ncall = ceil(max count / chunk_size) (chunk_count when chunk_size is 0). Other
// tensors are ignored. Errors start with the file name and name the tensor or key.
StatusOr<Imatrix> read_imatrix_gguf(const GgufFile& f);
StatusOr<Imatrix> parse_imatrix_gguf(const uint8_t* data, size_t size, const std::string& name);

// Either format, told apart by content: a file starting with the GGUF magic is read as GGUF, anything
// else as imatrix.dat (whose first 4 bytes are an entry count).
StatusOr<Imatrix> read_imatrix(const std::string& path);

enum class ImatrixFormat { kGguf, kDat };
// The output format for a name: kDat when `path` ends in ".dat", else kGguf (GGUF is llama-imatrix's
// default; llama-imatrix itself writes GGUF even to a ".dat" name unless told --output-format dat).
ImatrixFormat imatrix_format_for_path(const std::string& path);
// "gguf" / "dat"; anything else is an error naming the value.
StatusOr<ImatrixFormat> parse_imatrix_format(const std::string& s);
Status write_imatrix(const Imatrix& m, const std::string& path, ImatrixFormat format);

}  // namespace frugal
