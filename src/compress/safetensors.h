// Safetensors reader: Hugging Face checkpoints (one model.safetensors, or shards listed by
// model.safetensors.index.json), memory-mapped, zero copy.
//
// File layout: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:
// [begin, end]}, "__metadata__": {string: string}}, then the data area; offsets are relative to the data
// area. Supported dtypes: F32, F16, BF16 (others: kUnsupported naming the file, tensor and dtype).
// Every malformed input (file shorter than its header, header that is not a JSON object, a tensor entry
// missing fields, offsets out of the data area, overlapping tensors, end - begin != product(shape) *
// element size) is a kCorrupt Status whose message names the file and, where there is one, the tensor.
//
// Tied weights: safetensors' torch saver drops duplicate (shared) tensors and records the dropped name in
// __metadata__ as {dropped_name: kept_name}; find() resolves such aliases (is_alias() tells them apart).
//
// Thread-safety: immutable after open(); data pointers stay valid while the object lives.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "tensor/dtype.h"

namespace frugal {

struct SafeTensor {
  std::string name;
  DType dtype = DType::F32;    // F32, F16 or BF16
  std::vector<int64_t> shape;  // HF (row-major) order: shape[0] is the outermost dimension
  const uint8_t* data = nullptr;  // not aligned in general: read with memcpy
  uint64_t nbytes = 0;
  std::string file;  // path of the file holding it (for messages)

  int64_t numel() const;
  // The elements as f32 (F16/BF16 widened exactly).
  std::vector<float> to_f32() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`.
  static StatusOr<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  const std::string& path() const { return path_; }
  const std::vector<SafeTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  Status parse();
  std::string path_;
  std::unique_ptr<MappedFile> file_;
  std::vector<SafeTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a checkpoint directory.
class SafetensorsCheckpoint {
 public:
  // `dir` holds model.safetensors.index.json (shards from its weight_map; every listed tensor must be in
  // the shard the map names) or else model.safetensors. Errors name the file; a tensor name present in
  // two shards is kCorrupt.
  static StatusOr<std::unique_ptr<SafetensorsCheckpoint>> open(const std::string& dir);
  // Resolves __metadata__ aliases; nullptr if absent.
  const SafeTensor* find(const std::string& name) const;
  bool is_alias(const std::string& name) const { return aliases_.count(name) != 0; }
  // Stored tensor names in file order (aliases not included).
  std::vector<std::string> names() const;

 private:
  Status add_file(std::unique_ptr<SafetensorsFile> f);
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafeTensor*> by_name_;
  std::map<std::string, std::string> aliases_;  // dropped name -> stored name
};

}  // namespace frugal
