#include "gguf/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "base/check.h"

namespace frugal {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF"
constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}

void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

template <typename T>
std::vector<uint8_t> scalar(T v) {
  std::vector<uint8_t> out;
  put(out, v);
  return out;
}

template <typename T>
std::vector<uint8_t> array_payload(const std::vector<T>& v) {
  std::vector<uint8_t> out;
  out.reserve(8 + v.size() * sizeof(T));
  put<uint64_t>(out, v.size());
  for (const T& x : v) put(out, x);
  return out;
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

uint64_t tensor_nbytes(DType type, const std::vector<int64_t>& ne) {
  uint64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= (uint64_t)ne[d];
  return dtype_row_bytes(type, ne[0]) * rows;
}

// Size in bytes of a scalar element of an array (numbers/bools only).
size_t elem_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    default: FRUGAL_CHECK(false); return 0;
  }
}

// Re-encodes a parsed value (copy_kvs).
std::vector<uint8_t> encode_value(const GgufValue& v) {
  std::vector<uint8_t> out;
  switch (v.type) {
    case GgufType::STRING:
      put_string(out, std::string(v.str));
      return out;
    case GgufType::ARRAY:
      put<uint32_t>(out, (uint32_t)v.elem_type);
      put<uint64_t>(out, v.count);
      if (v.elem_type == GgufType::STRING) {
        for (std::string_view s : v.strings) put_string(out, std::string(s));
      } else {
        out.insert(out.end(), v.elems, v.elems + v.count * elem_size(v.elem_type));
      }
      return out;
    case GgufType::FLOAT32: return scalar((float)v.f);
    case GgufType::FLOAT64: return scalar(v.f);
    case GgufType::BOOL: return scalar((uint8_t)(v.b ? 1 : 0));
    default: {
      // Integers: the low elem_size bytes of the two's-complement value.
      const size_t n = elem_size(v.type);
      const uint64_t u = v.u;
      for (size_t k = 0; k < n; ++k) out.push_back((uint8_t)(u >> (8 * k)));
      return out;
    }
  }
}

}  // namespace

void GgufWriter::set_raw(const std::string& key, GgufType type, GgufType elem_type, std::vector<uint8_t> payload) {
  for (Kv& kv : kvs_) {
    if (kv.key == key) {
      kv.type = type;
      kv.elem_type = elem_type;
      kv.payload = std::move(payload);
      return;
    }
  }
  kvs_.push_back(Kv{key, type, elem_type, std::move(payload)});
}

void GgufWriter::set_u8(const std::string& k, uint8_t v) { set_raw(k, GgufType::UINT8, GgufType::UINT8, scalar(v)); }
void GgufWriter::set_i8(const std::string& k, int8_t v) { set_raw(k, GgufType::INT8, GgufType::UINT8, scalar(v)); }
void GgufWriter::set_u16(const std::string& k, uint16_t v) { set_raw(k, GgufType::UINT16, GgufType::UINT8, scalar(v)); }
void GgufWriter::set_i16(const std::string& k, int16_t v) { set_raw(k, GgufType::INT16, GgufType::UINT8, scalar(v)); }
void GgufWriter::set_u32(const std::string& k, uint32_t v) { set_raw(k, GgufType::UINT32, GgufType::UINT8, scalar(v)); }
void GgufWriter::set_i32(const std::string& k, int32_t v) { set_raw(k, GgufType::INT32, GgufType::UINT8, scalar(v)); }
void GgufWriter::set_u64(const std::string& k, uint64_t v) { set_raw(k, GgufType::UINT64, GgufType::UINT8, scalar(v)); }
void GgufWriter::set_i64(const std::string& k, int64_t v) { set_raw(k, GgufType::INT64, GgufType::UINT8, scalar(v)); }
void GgufWriter::set_f32(const std::string& k, float v) { set_raw(k, GgufType::FLOAT32, GgufType::UINT8, scalar(v)); }
void GgufWriter::set_f64(const std::string& k, double v) { set_raw(k, GgufType::FLOAT64, GgufType::UINT8, scalar(v)); }
void GgufWriter::set_bool(const std::string& k, bool v) {
  set_raw(k, GgufType::BOOL, GgufType::UINT8, scalar((uint8_t)(v ? 1 : 0)));
}
void GgufWriter::set_string(const std::string& k, const std::string& v) {
  std::vector<uint8_t> p;
  put_string(p, v);
  set_raw(k, GgufType::STRING, GgufType::UINT8, std::move(p));
}
void GgufWriter::set_string_array(const std::string& k, const std::vector<std::string>& v) {
  std::vector<uint8_t> p;
  put<uint64_t>(p, v.size());
  for (const std::string& s : v) put_string(p, s);
  set_raw(k, GgufType::ARRAY, GgufType::STRING, std::move(p));
}
void GgufWriter::set_i32_array(const std::string& k, const std::vector<int32_t>& v) {
  set_raw(k, GgufType::ARRAY, GgufType::INT32, array_payload(v));
}
void GgufWriter::set_f32_array(const std::string& k, const std::vector<float>& v) {
  set_raw(k, GgufType::ARRAY, GgufType::FLOAT32, array_payload(v));
}

void GgufWriter::copy_kvs(const GgufFile& src, const std::string& prefix) {
  for (const GgufKV& kv : src.kvs()) {
    if (kv.key.compare(0, prefix.size(), prefix) != 0) continue;
    std::vector<uint8_t> payload = encode_value(kv.value);
    if (kv.value.type == GgufType::ARRAY) {
      // set_raw's ARRAY payload excludes the element type (written from elem_type).
      payload.erase(payload.begin(), payload.begin() + 4);
    }
    set_raw(kv.key, kv.value.type, kv.value.elem_type, std::move(payload));
  }
}

void GgufWriter::check_tensor_args(const std::string& name, DType type, const std::vector<int64_t>& ne) const {
  for (const Tensor& t : tensors_) FRUGAL_CHECK_MSG(t.name != name, ("duplicate tensor name " + name).c_str());
  FRUGAL_CHECK_MSG(!ne.empty() && ne.size() <= 4, name.c_str());
  FRUGAL_CHECK_MSG(name.size() < 64, name.c_str());
  for (int64_t n : ne) FRUGAL_CHECK_MSG(n > 0, name.c_str());
  FRUGAL_CHECK_MSG(ne[0] % dtype_block_size(type) == 0, name.c_str());
}

void GgufWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, std::vector<uint8_t> data) {
  check_tensor_args(name, type, ne);
  FRUGAL_CHECK_MSG(data.size() == tensor_nbytes(type, ne), name.c_str());
  tensors_.push_back(Tensor{name, type, std::move(ne), std::move(data), nullptr});
}

void GgufWriter::add_tensor_lazy(const std::string& name, DType type, std::vector<int64_t> ne,
                                 std::function<void(uint8_t* dst)> produce) {
  check_tensor_args(name, type, ne);
  FRUGAL_CHECK(produce != nullptr);
  tensors_.push_back(Tensor{name, type, std::move(ne), {}, std::move(produce)});
}

// Header, KVs, tensor infos and padding up to the data section.
std::vector<uint8_t> GgufWriter::encode_header(uint64_t* alignment) const {
  *alignment = kDefaultAlignment;
  for (const Kv& kv : kvs_) {
    if (kv.key == "general.alignment") {
      FRUGAL_CHECK_MSG(kv.type == GgufType::UINT32, "general.alignment must be set with set_u32");
      uint32_t a = 0;
      std::memcpy(&a, kv.payload.data(), 4);
      FRUGAL_CHECK_MSG(a != 0 && (a & (a - 1)) == 0, "general.alignment must be a power of two");
      *alignment = a;
    }
  }
  std::vector<uint8_t> out;
  put<uint32_t>(out, kMagic);
  put<uint32_t>(out, kVersion);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, kvs_.size());
  for (const Kv& kv : kvs_) {
    put_string(out, kv.key);
    put<uint32_t>(out, (uint32_t)kv.type);
    if (kv.type == GgufType::ARRAY) put<uint32_t>(out, (uint32_t)kv.elem_type);
    out.insert(out.end(), kv.payload.begin(), kv.payload.end());
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    put_string(out, t.name);
    put<uint32_t>(out, (uint32_t)t.ne.size());
    for (int64_t n : t.ne) put<int64_t>(out, n);
    put<uint32_t>(out, (uint32_t)t.type);
    put<uint64_t>(out, offset);
    offset += align_up(tensor_nbytes(t.type, t.ne), *alignment);
  }
  out.resize(align_up(out.size(), *alignment), 0);
  return out;
}

// Calls sink(bytes, n) for the header and then every tensor (with padding), producing lazy tensors one
// at a time so at most one tensor is in memory. Stops at the first sink failure.
bool GgufWriter::stream(const std::vector<uint8_t>& header, uint64_t alignment, const Sink& sink) const {
  if (!sink(header.data(), header.size())) return false;
  static const uint8_t kZeros[64] = {};
  for (const Tensor& t : tensors_) {
    const uint64_t nbytes = tensor_nbytes(t.type, t.ne);
    const uint8_t* bytes = t.data.data();
    std::unique_ptr<uint8_t[]> buf;
    if (t.produce) {
      buf.reset(new uint8_t[nbytes]);
      t.produce(buf.get());
      bytes = buf.get();
    }
    if (!sink(bytes, nbytes)) return false;
    for (uint64_t pad = align_up(nbytes, alignment) - nbytes; pad > 0;) {
      const uint64_t n = pad < sizeof kZeros ? pad : sizeof kZeros;
      if (!sink(kZeros, n)) return false;
      pad -= n;
    }
  }
  return true;
}

Status GgufWriter::write(const std::string& path) const {
  uint64_t alignment = 0;
  const std::vector<uint8_t> header = encode_header(&alignment);
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return io_error(path + ": cannot create " + tmp + ": " + std::strerror(errno));
  int err = 0;
  const bool ok = stream(header, alignment, [&](const uint8_t* p, uint64_t n) {
    if (std::fwrite(p, 1, n, f) == n) return true;
    err = errno;
    return false;
  });
  if (std::fclose(f) != 0 && ok) err = errno ? errno : EIO;
  if (!ok || err != 0) {
    std::remove(tmp.c_str());
    return io_error(path + ": write failed: " + std::strerror(err ? err : EIO));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    return io_error(path + ": cannot rename " + tmp + ": " + std::strerror(e));
  }
  return Status::Ok();
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  uint64_t alignment = 0;
  const std::vector<uint8_t> header = encode_header(&alignment);
  std::vector<uint8_t> out;
  stream(header, alignment, [&](const uint8_t* p, uint64_t n) {
    out.insert(out.end(), p, p + n);
    return true;
  });
  return out;
}

}  // namespace frugal
