// GgufWriter: builds a GGUF v3 file (metadata + tensors) and writes it, streaming tensor data so that
// large models never need to be held in memory at once.
//
// Usage:
//   GgufWriter w;
//   w.set_string("general.architecture", "llama");
//   w.set_u32("llama.block_count", 2);
//   w.add_tensor("token_embd.weight", DType::Q8_0, {n_embd, n_vocab}, bytes);          // data owned
//   w.add_tensor_lazy("blk.0.ffn_up.weight", DType::Q4_K, {K, N}, [&](uint8_t* dst) {...});  // produced at write
//   Status s = w.write("model.gguf");
//
// Tensors are written in the order added, each aligned to `general.alignment` (32 unless set; it must be
// set with set_u32 to a power of two). Programmer errors (checked, abort): a tensor name of 64 bytes or
// more or already added, a shape with a non-positive dimension or a row that is not a whole number of
// blocks, add_tensor data of the wrong size.
// Thread-safety: none; build and write from one thread (lazy producers may use their own threads).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/gguf_file.h"
#include "tensor/dtype.h"

namespace frugal {

class GgufWriter {
 public:
  void set_u8(const std::string& key, uint8_t v);
  void set_i8(const std::string& key, int8_t v);
  void set_u16(const std::string& key, uint16_t v);
  void set_i16(const std::string& key, int16_t v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_i64(const std::string& key, int64_t v);
  void set_f32(const std::string& key, float v);
  void set_f64(const std::string& key, double v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v);
  void set_f32_array(const std::string& key, const std::vector<float>& v);
  // Copies every KV of `src` (e.g. a vocabulary file's tokenizer.* keys) whose key starts with `prefix`.
  void copy_kvs(const GgufFile& src, const std::string& prefix);

  // ne in ggml order (ne[0] = row length). `data` must hold exactly the tensor's bytes.
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, std::vector<uint8_t> data);
  // The producer fills the tensor's nbytes at write time (streaming; nothing kept in memory).
  void add_tensor_lazy(const std::string& name, DType type, std::vector<int64_t> ne,
                       std::function<void(uint8_t* dst)> produce);

  // Writes the file (to path + ".tmp", then renames). Errors name the path.
  Status write(const std::string& path) const;
  // Serializes to memory (tests, fuzz seeds).
  std::vector<uint8_t> to_bytes() const;

 private:
  struct Kv {
    std::string key;
    GgufType type;
    GgufType elem_type;
    std::vector<uint8_t> payload;  // encoded value (without key/type)
  };
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
    std::function<void(uint8_t*)> produce;
  };
  using Sink = std::function<bool(const uint8_t* bytes, uint64_t n)>;
  void set_raw(const std::string& key, GgufType type, GgufType elem_type, std::vector<uint8_t> payload);
  void check_tensor_args(const std::string& name, DType type, const std::vector<int64_t>& ne) const;
  std::vector<uint8_t> encode_header(uint64_t* alignment) const;
  bool stream(const std::vector<uint8_t>& header, uint64_t alignment, const Sink& sink) const;

  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace frugal
