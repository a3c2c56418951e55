// GgufFile: a validated, memory-mapped GGUF (v2/v3) file. Tensor data is used in place (zero copy).
//
// open() checks everything a malformed or truncated file can get wrong and returns a Status whose
// message starts with the file name and names the problem (bad magic, unsupported version, truncated
// header, string/array length past end of file, unknown value or tensor type, bad dimensions, row size
// not a multiple of the block size, tensor data outside the file or overlapping another, duplicate key or
// tensor name, bad alignment). After a successful open every accessor is safe: no out-of-bounds read.
//
// Layout (all little-endian):
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv | n_kv x KV | n_tensors x tensor info |
//   pad to alignment | tensor data (each tensor at data_offset + offset, offset % alignment == 0)
//
// Thread-safety: immutable after open(); safe to read from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "tensor/dtype.h"

namespace frugal {

class GgufCursor;  // bounds-checked reader used while parsing (gguf_file.cpp)

enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Scalars are decoded; arrays of numbers point into the mapping (zero copy);
// arrays of strings are a vector of views into the mapping.
struct GgufValue {
  GgufType type = GgufType::UINT8;
  // scalar payload (by type): integers in i (signed) or u (unsigned), floats in f, bools in b.
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  bool b = false;
  std::string_view str;                  // STRING
  GgufType elem_type = GgufType::UINT8;  // ARRAY: element type (never ARRAY: nested arrays are rejected)
  uint64_t count = 0;                    // ARRAY: element count
  const uint8_t* elems = nullptr;        // ARRAY of numbers/bools: raw little-endian elements
  std::vector<std::string_view> strings; // ARRAY of STRING

  bool is_int() const;    // any integer scalar type
  bool is_float() const;  // FLOAT32/FLOAT64
  // Array element k converted (checks k < count and a numeric element type). array_int truncates floats
  // toward zero, saturating at the int64 range (NaN -> 0); UINT64 above INT64_MAX wraps negative.
  int64_t array_int(uint64_t k) const;
  double array_float(uint64_t k) const;
};

struct GgufKV {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  DType type = DType::F32;
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] fastest (row length)
  uint64_t offset = 0;           // relative to data_offset
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr; // into the mapping

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t row_bytes() const { return dtype_row_bytes(type, ne[0]); }
  std::string shape_string() const;  // "{4096, 32000}"
};

class GgufFile {
 public:
  // Maps and validates `path`.
  static StatusOr<std::unique_ptr<GgufFile>> open(const std::string& path);
  // Same, mapping or reading the bytes as `load` says (--mmap / --no-mmap / --mlock; see MappedFile).
  static StatusOr<std::unique_ptr<GgufFile>> open(const std::string& path, const LoadOptions& load);
  // Validates a buffer the caller keeps alive (fuzzing, tests). `name` prefixes error messages.
  static StatusOr<std::unique_ptr<GgufFile>> from_memory(const uint8_t* data, size_t size, std::string name);

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  size_t file_size() const { return size_; }
  const uint8_t* file_data() const { return data_; }
  // How the bytes are held (mode, huge pages, lock); nullptr for from_memory.
  const MappedFile* mapped() const { return map_.get(); }

  const std::vector<GgufKV>& kvs() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;  // nullptr if absent

  // Typed getters. Any integer width converts to int64 (negative values where unsigned is stored are
  // impossible); FLOAT32/FLOAT64 convert to double; getters with a default return it when the key is
  // absent. A present key of the wrong type is an error naming the key and both types.
  StatusOr<int64_t> get_int(std::string_view key) const;
  StatusOr<int64_t> get_int(std::string_view key, int64_t dflt) const;
  StatusOr<double> get_float(std::string_view key) const;
  StatusOr<double> get_float(std::string_view key, double dflt) const;
  StatusOr<bool> get_bool(std::string_view key, bool dflt) const;
  StatusOr<std::string> get_string(std::string_view key) const;
  StatusOr<std::string> get_string(std::string_view key, const std::string& dflt) const;
  // Arrays (error if absent, not an array, or of an incompatible element type).
  StatusOr<std::vector<std::string_view>> get_string_array(std::string_view key) const;
  StatusOr<std::vector<int64_t>> get_int_array(std::string_view key) const;
  StatusOr<std::vector<float>> get_float_array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* tensor(std::string_view name) const;  // nullptr if absent

 private:
  GgufFile() = default;
  Status parse();
  Status parse_header(uint64_t* n_tensors, uint64_t* n_kv);
  Status parse_kvs(GgufCursor& r, uint64_t n_kv);
  Status parse_tensor_info(GgufCursor& r, uint64_t index, GgufTensorInfo* t);
  Status place_tensors();
  Status wrong_type(std::string_view key, const GgufValue& v, const char* expected) const;
  Status missing(std::string_view key) const;

  std::string name_;
  std::unique_ptr<MappedFile> map_;  // null for from_memory
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKV> kvs_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;  // name -> index in tensors_
};

}  // namespace frugal
