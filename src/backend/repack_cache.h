// On-disk cache of the CPU backend's repacked weight copies (MatmulScratch), so that a server's next
// start does not repack again: `frugal serve|run|bench|batched-bench --repack-cache FILE` (tools/).
//
// File (little-endian):
//   "FRUGALRP" | u32 version (1) | u32 0 | char isa[16] (NUL-padded) | u64 model id | u64 n
//   n entries of { u64 weight offset (from the model's tensor-data base), u32 type, u32 0, i64 K, i64 N,
//                  u64 row bytes, u64 bytes, u64 file offset (4096-aligned) }
//   the copies, each at its file offset.
// The model id (repack_model_id) covers the model file's size, modification time and GGUF header; the ISA
// names the kernels. Every adopted copy is also checked against the weights: its first and last
// 16-row groups are repacked again and must match byte for byte (catches a changed repack layout, a
// different file at the same path, a damaged cache). A copy that fails is not used and is rebuilt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "backend/isa.h"
#include "base/status.h"

namespace frugal {

class MatmulScratch;

// Where the model's weights lie in memory and which file they came from.
struct RepackCacheSpec {
  std::string path;             // the cache file
  const uint8_t* base = nullptr;  // weights are in [base, base + size)
  size_t size = 0;
  uint64_t model_id = 0;        // repack_model_id()
};

// FNV-1a over the file's size, mtime (ns) and its first `header_bytes` bytes (the GGUF header and tensor
// infos).
uint64_t repack_model_id(uint64_t file_size, int64_t mtime_ns, const uint8_t* header, size_t header_bytes);

struct RepackCacheLoad {
  int adopted = 0;   // copies taken from the file
  int rejected = 0;  // copies in the file that did not match the weights (rebuilt when needed)
  size_t bytes = 0;  // bytes adopted
};

// Adopts the copies stored at spec.path into `scratch`. A missing file gives {0, 0, 0}; a file for
// another model, ISA or version, or a damaged one, an error saying so (nothing adopted).
StatusOr<RepackCacheLoad> load_repack_cache(MatmulScratch& scratch, Isa isa, const RepackCacheSpec& spec);

// Writes every copy of `scratch` whose weight lies inside the spec's range to spec.path (through a
// temporary file in the same directory, renamed into place). Returns the copies written.
StatusOr<int> save_repack_cache(const MatmulScratch& scratch, Isa isa, const RepackCacheSpec& spec);

}  // namespace frugal
