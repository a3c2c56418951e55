#include "gguf/gguf_file.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <unordered_set>

#include "base/check.h"
#include "tensor/sparse_nm.h"

namespace frugal {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr uint64_t kHeaderBytes = 24;
constexpr uint64_t kMaxStringBytes = 1ull << 30;
constexpr uint64_t kMaxArrayCount = 1ull << 30;
constexpr uint64_t kMaxTensorName = 64;  // names must be shorter than this (GGML_MAX_NAME)
constexpr int kMaxDims = 4;
constexpr uint64_t kReserveCap = 4096;  // up-front reservation limit for counts read from the file
// Smallest possible records: a KV with an empty key and a one-byte value; a tensor info with an
// empty name and one dimension.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

// Size in bytes of a fixed-size value type; 0 for STRING/ARRAY; -1 for unknown ids.
int scalar_size(uint32_t t) {
  switch ((GgufType)t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    case GgufType::STRING: case GgufType::ARRAY: return 0;
  }
  return -1;
}

bool is_int_type(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
    case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64:
      return true;
    default:
      return false;
  }
}
bool is_float_type(GgufType t) { return t == GgufType::FLOAT32 || t == GgufType::FLOAT64; }
bool is_numeric_type(GgufType t) { return is_int_type(t) || is_float_type(t) || t == GgufType::BOOL; }

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Decodes one fixed-size scalar at p into a GgufValue (type already set).
void decode_scalar(const uint8_t* p, GgufValue* v) {
  switch (v->type) {
    case GgufType::UINT8: v->u = load<uint8_t>(p); v->i = (int64_t)v->u; break;
    case GgufType::INT8: v->i = load<int8_t>(p); v->u = (uint64_t)v->i; break;
    case GgufType::UINT16: v->u = load<uint16_t>(p); v->i = (int64_t)v->u; break;
    case GgufType::INT16: v->i = load<int16_t>(p); v->u = (uint64_t)v->i; break;
    case GgufType::UINT32: v->u = load<uint32_t>(p); v->i = (int64_t)v->u; break;
    case GgufType::INT32: v->i = load<int32_t>(p); v->u = (uint64_t)v->i; break;
    case GgufType::UINT64: v->u = load<uint64_t>(p); v->i = (int64_t)v->u; break;
    case GgufType::INT64: v->i = load<int64_t>(p); v->u = (uint64_t)v->i; break;
    case GgufType::FLOAT32: v->f = load<float>(p); break;
    case GgufType::FLOAT64: v->f = load<double>(p); break;
    case GgufType::BOOL: v->b = load<uint8_t>(p) != 0; v->i = v->b; v->u = v->b; break;
    default: FRUGAL_CHECK(false);
  }
}

}  // namespace

// Bounds-checked little-endian reader over the file bytes. Every failure names the file, the record
// being read (`ctx`) and the offset.
class GgufCursor {
 public:
  GgufCursor(const std::string& name, const uint8_t* data, uint64_t size) : name_(name), data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  void seek(uint64_t p) { pos_ = p; }
  uint64_t remaining() const { return size_ - pos_; }
  const uint8_t* here() const { return data_ + pos_; }

  Status need(uint64_t n, const std::string& ctx, const char* what) const {
    if (n <= remaining()) return Status::Ok();
    return corrupt(name_ + ": " + ctx + ": truncated " + what + ": need " + std::to_string(n) +
                   " bytes at offset " + hex(pos_) + ", file size " + hex(size_));
  }
  template <typename T>
  Status read(T* out, const std::string& ctx, const char* what) {
    FRUGAL_RETURN_IF_ERROR(need(sizeof(T), ctx, what));
    *out = load<T>(data_ + pos_);
    pos_ += sizeof(T);
    return Status::Ok();
  }
  // read_string without an error message (vocabularies hold 100k+ strings); false, position unchanged,
  // if it would fail.
  bool try_read_string(std::string_view* out) {
    if (remaining() < 8) return false;
    const uint64_t len = load<uint64_t>(data_ + pos_);
    if (len > kMaxStringBytes || len > remaining() - 8) return false;
    *out = std::string_view((const char*)data_ + pos_ + 8, len);
    pos_ += 8 + len;
    return true;
  }
  // A u64 length followed by that many bytes.
  Status read_string(std::string_view* out, const std::string& ctx, const char* what) {
    uint64_t len = 0;
    FRUGAL_RETURN_IF_ERROR(read(&len, ctx, (std::string(what) + " length").c_str()));
    if (len > kMaxStringBytes || len > remaining()) {
      return corrupt(name_ + ": " + ctx + ": " + what + " length " + std::to_string(len) +
                     (len > kMaxStringBytes ? " exceeds the 1 GiB limit" : " past end of file") + " (offset " +
                     hex(pos_) + ", size " + hex(size_) + ")");
    }
    *out = std::string_view((const char*)data_ + pos_, len);
    pos_ += len;
    return Status::Ok();
  }

 private:
  const std::string& name_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

namespace {

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

Status read_value(GgufCursor& r, const std::string& name, const std::string& ctx, GgufValue* v) {
  uint32_t type = 0;
  FRUGAL_RETURN_IF_ERROR(r.read(&type, ctx, "value type"));
  if (scalar_size(type) < 0) return corrupt(name + ": " + ctx + ": unknown value type " + std::to_string(type));
  v->type = (GgufType)type;
  if (v->type == GgufType::STRING) return r.read_string(&v->str, ctx, "string");
  if (v->type != GgufType::ARRAY) {
    const int sz = scalar_size(type);
    std::string what = std::string(gguf_type_name(v->type)) + " value";
    FRUGAL_RETURN_IF_ERROR(r.need((uint64_t)sz, ctx, what.c_str()));
    decode_scalar(r.here(), v);
    r.seek(r.pos() + sz);
    return Status::Ok();
  }
  uint32_t elem = 0;
  FRUGAL_RETURN_IF_ERROR(r.read(&elem, ctx, "array element type"));
  if (elem == (uint32_t)GgufType::ARRAY) return corrupt(name + ": " + ctx + ": nested arrays are not supported");
  if (scalar_size(elem) < 0)
    return corrupt(name + ": " + ctx + ": unknown array element type " + std::to_string(elem));
  v->elem_type = (GgufType)elem;
  FRUGAL_RETURN_IF_ERROR(r.read(&v->count, ctx, "array count"));
  if (v->count > kMaxArrayCount)
    return corrupt(name + ": " + ctx + ": array count " + std::to_string(v->count) + " exceeds the limit 2^30");
  // Strings take at least their 8-byte length each: reject impossible counts before allocating.
  const uint64_t min_elem = v->elem_type == GgufType::STRING ? 8 : (uint64_t)scalar_size(elem);
  const uint64_t min_bytes = v->count * min_elem;  // count <= 2^30, elem <= 8: no overflow
  if (min_bytes > r.remaining()) {
    return corrupt(name + ": " + ctx + ": array of " + std::to_string(v->count) + " " +
                   gguf_type_name(v->elem_type) + " (at least " + std::to_string(min_bytes) +
                   " bytes) past end of file (offset " + hex(r.pos()) + ", size " + hex(r.pos() + r.remaining()) +
                   ")");
  }
  if (v->elem_type != GgufType::STRING) {
    v->elems = r.here();
    r.seek(r.pos() + min_bytes);
    return Status::Ok();
  }
  v->strings.reserve(v->count);
  for (uint64_t k = 0; k < v->count; ++k) {
    std::string_view s;
    if (!r.try_read_string(&s)) {  // fast path failed: read again to build the precise message
      FRUGAL_RETURN_IF_ERROR(r.read_string(&s, ctx + " element " + std::to_string(k), "string"));
    }
    v->strings.push_back(s);
  }
  return Status::Ok();
}

// Float -> int64 truncating toward zero, saturating at the int64 range; NaN -> 0 (never UB).
int64_t float_to_i64(double x) {
  if (!(x == x)) return 0;
  if (x >= 9223372036854775807.0) return INT64_MAX;
  if (x <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)x;
}

int64_t elem_int(GgufType t, const uint8_t* p) {
  switch (t) {
    case GgufType::UINT8: return load<uint8_t>(p);
    case GgufType::INT8: return load<int8_t>(p);
    case GgufType::UINT16: return load<uint16_t>(p);
    case GgufType::INT16: return load<int16_t>(p);
    case GgufType::UINT32: return load<uint32_t>(p);
    case GgufType::INT32: return load<int32_t>(p);
    case GgufType::UINT64: return (int64_t)load<uint64_t>(p);
    case GgufType::INT64: return load<int64_t>(p);
    case GgufType::BOOL: return load<uint8_t>(p) != 0;
    case GgufType::FLOAT32: return float_to_i64(load<float>(p));
    case GgufType::FLOAT64: return float_to_i64(load<double>(p));
    default: FRUGAL_CHECK(false); return 0;
  }
}

double elem_float(GgufType t, const uint8_t* p) {
  if (t == GgufType::FLOAT32) return load<float>(p);
  if (t == GgufType::FLOAT64) return load<double>(p);
  if (t == GgufType::UINT64) return (double)load<uint64_t>(p);
  return (double)elem_int(t, p);
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return "UINT8";
    case GgufType::INT8: return "INT8";
    case GgufType::UINT16: return "UINT16";
    case GgufType::INT16: return "INT16";
    case GgufType::UINT32: return "UINT32";
    case GgufType::INT32: return "INT32";
    case GgufType::FLOAT32: return "FLOAT32";
    case GgufType::BOOL: return "BOOL";
    case GgufType::STRING: return "STRING";
    case GgufType::ARRAY: return "ARRAY";
    case GgufType::UINT64: return "UINT64";
    case GgufType::INT64: return "INT64";
    case GgufType::FLOAT64: return "FLOAT64";
  }
  return "UNKNOWN";
}

bool GgufValue::is_int() const { return is_int_type(type); }
bool GgufValue::is_float() const { return is_float_type(type); }

int64_t GgufValue::array_int(uint64_t k) const {
  FRUGAL_CHECK(type == GgufType::ARRAY && k < count && is_numeric_type(elem_type) && elems != nullptr);
  return elem_int(elem_type, elems + k * (uint64_t)scalar_size((uint32_t)elem_type));
}

double GgufValue::array_float(uint64_t k) const {
  FRUGAL_CHECK(type == GgufType::ARRAY && k < count && is_numeric_type(elem_type) && elems != nullptr);
  return elem_float(elem_type, elems + k * (uint64_t)scalar_size((uint32_t)elem_type));
}

std::string GgufTensorInfo::shape_string() const {
  std::string s = "{";
  for (int d = 0; d < n_dims; ++d) {
    if (d) s += ", ";
    s += std::to_string(ne[d]);
  }
  return s + "}";
}

StatusOr<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) { return open(path, LoadOptions{}); }

StatusOr<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path, const LoadOptions& load) {
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> map, MappedFile::open(path, load));
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = path;
  f->data_ = map->data();
  f->size_ = map->size();
  f->map_ = std::move(map);
  FRUGAL_RETURN_IF_ERROR(f->parse());
  return f;
}

StatusOr<std::unique_ptr<GgufFile>> GgufFile::from_memory(const uint8_t* data, size_t size, std::string name) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = std::move(name);
  f->data_ = data;
  f->size_ = size;
  FRUGAL_RETURN_IF_ERROR(f->parse());
  return f;
}

Status GgufFile::parse_header(uint64_t* n_tensors, uint64_t* n_kv) {
  if (size_ >= 4 && load<uint32_t>(data_) != kMagic)
    return corrupt(name_ + ": bad magic " + hex(load<uint32_t>(data_)) + ", not a GGUF file");
  if (size_ < kHeaderBytes) {
    return corrupt(name_ + ": truncated header: need " + std::to_string(kHeaderBytes) + " bytes, file has " +
                   std::to_string(size_));
  }
  version_ = load<uint32_t>(data_ + 4);
  if (version_ != 0 && (version_ & 0xffff) == 0) {
    return unsupported(name_ + ": byte-swapped (big-endian) GGUF (version field " + hex(version_) +
                       "); only little-endian files are supported");
  }
  if (version_ != 2 && version_ != 3)
    return unsupported(name_ + ": unsupported GGUF version " + std::to_string(version_));
  *n_tensors = load<uint64_t>(data_ + 8);
  *n_kv = load<uint64_t>(data_ + 16);
  const uint64_t rest = size_ - kHeaderBytes;
  if (*n_kv > rest / kMinKvBytes) {
    return corrupt(name_ + ": n_kv " + std::to_string(*n_kv) + " impossible: the remaining " + std::to_string(rest) +
                   " bytes hold at most " + std::to_string(rest / kMinKvBytes) + " key/value pairs");
  }
  const uint64_t after_kv = rest - *n_kv * kMinKvBytes;
  if (*n_tensors > after_kv / kMinTensorInfoBytes) {
    return corrupt(name_ + ": n_tensors " + std::to_string(*n_tensors) + " impossible: the remaining " +
                   std::to_string(after_kv) + " bytes hold at most " +
                   std::to_string(after_kv / kMinTensorInfoBytes) + " tensor infos");
  }
  return Status::Ok();
}

Status GgufFile::parse_kvs(GgufCursor& r, uint64_t n_kv) {
  kvs_.reserve(std::min<uint64_t>(n_kv, kReserveCap));
  std::unordered_set<std::string_view> seen;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string ctx = "key #" + std::to_string(k);
    std::string_view key;
    FRUGAL_RETURN_IF_ERROR(r.read_string(&key, ctx, "key"));
    ctx += " " + quoted(key);
    GgufKV kv;
    kv.key = std::string(key);
    FRUGAL_RETURN_IF_ERROR(read_value(r, name_, ctx, &kv.value));
    if (!seen.insert(key).second) return corrupt(name_ + ": duplicate key " + quoted(key));
    kvs_.push_back(std::move(kv));
  }
  if (const GgufValue* a = find("general.alignment")) {
    // Strictly UINT32, as llama.cpp reads it (a writer honoring another width would disagree with us).
    if (a->type != GgufType::UINT32)
      return corrupt(name_ + ": general.alignment has type " + gguf_type_name(a->type) + ", expected UINT32");
    if (a->u == 0 || (a->u & (a->u - 1)) != 0)
      return corrupt(name_ + ": general.alignment " + std::to_string(a->u) + " is not a power of two");
    alignment_ = a->u;
  }
  return Status::Ok();
}

Status GgufFile::parse_tensor_info(GgufCursor& r, uint64_t index, GgufTensorInfo* t) {
  std::string ctx = "tensor #" + std::to_string(index);
  std::string_view name;
  uint64_t len = 0;
  FRUGAL_RETURN_IF_ERROR(r.need(8, ctx, "name length"));
  std::memcpy(&len, r.here(), 8);
  if (len >= kMaxTensorName) {
    return corrupt(name_ + ": " + ctx + ": name length " + std::to_string(len) + " exceeds the limit " +
                   std::to_string(kMaxTensorName - 1));
  }
  FRUGAL_RETURN_IF_ERROR(r.read_string(&name, ctx, "name"));
  t->name = std::string(name);
  ctx = "tensor " + quoted(name);
  uint32_t n_dims = 0;
  FRUGAL_RETURN_IF_ERROR(r.read(&n_dims, ctx, "n_dims"));
  if (n_dims < 1 || n_dims > kMaxDims)
    return corrupt(name_ + ": " + ctx + ": n_dims " + std::to_string(n_dims) + " out of range 1..4");
  t->n_dims = (int)n_dims;
  for (uint32_t d = 0; d < n_dims; ++d)
    FRUGAL_RETURN_IF_ERROR(r.read(&t->ne[d], ctx, "dimension"));
  uint32_t type = 0;
  FRUGAL_RETURN_IF_ERROR(r.read(&type, ctx, "type"));
  FRUGAL_RETURN_IF_ERROR(r.read(&t->offset, ctx, "offset"));
  for (uint32_t d = 0; d < n_dims; ++d) {
    if (t->ne[d] <= 0) {
      return corrupt(name_ + ": " + ctx + ": dimension " + std::to_string(d) + " is " + std::to_string(t->ne[d]) +
                     " (must be positive)");
    }
  }
  int64_t n = 1;
  for (int d = 0; d < kMaxDims; ++d)
    if (__builtin_mul_overflow(n, t->ne[d], &n)) return corrupt(name_ + ": " + ctx + ": element count overflows");
  const DTypeInfo* info = dtype_info(type);
  if (!info && is_retired_sparse_type_id(type))
    return unsupported(name_ + ": " + ctx + ": tensor type " + std::to_string(type) +
                       " is the N:M sparse layout of an earlier frugal build, no longer read; prune the model again "
                       "with this build (frugal prune)");
  if (!info) return corrupt(name_ + ": " + ctx + ": unknown tensor type " + std::to_string(type));
  t->type = info->type;
  if (t->ne[0] % info->block_size != 0) {
    return corrupt(name_ + ": " + ctx + ": row of " + std::to_string(t->ne[0]) + " elements is not a multiple of the " +
                   info->name + " block size " + std::to_string(info->block_size));
  }
  // n / block_size * block_bytes fits: block_bytes <= 8 * block_size for every type except... guard anyway.
  if (__builtin_mul_overflow((uint64_t)(n / info->block_size), (uint64_t)info->block_bytes, &t->nbytes))
    return corrupt(name_ + ": " + ctx + ": byte size overflows");
  if (t->offset % alignment_ != 0) {
    return corrupt(name_ + ": " + ctx + ": offset " + hex(t->offset) + " not a multiple of alignment " +
                   std::to_string(alignment_));
  }
  return Status::Ok();
}

Status GgufFile::place_tensors() {
  std::vector<size_t> order(tensors_.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  for (GgufTensorInfo& t : tensors_) {
    uint64_t begin = 0, end = 0;
    const bool ovf = __builtin_add_overflow(data_offset_, t.offset, &begin) ||
                     __builtin_add_overflow(begin, t.nbytes, &end);
    if (ovf) {
      return corrupt(name_ + ": tensor " + quoted(t.name) + ": data offset " + hex(t.offset) +
                     " past end of file (size " + hex(size_) + ")");
    }
    if (end > size_) {
      return corrupt(name_ + ": tensor " + quoted(t.name) + ": data [" + hex(begin) + ", " + hex(end) +
                     ") past end of file (size " + hex(size_) + ")");
    }
    t.data = data_ + begin;
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensorInfo& a = tensors_[order[k - 1]];
    const GgufTensorInfo& b = tensors_[order[k]];
    if (a.offset + a.nbytes > b.offset)
      return corrupt(name_ + ": tensors " + quoted(a.name) + " and " + quoted(b.name) + " overlap");
  }
  return Status::Ok();
}

Status GgufFile::parse() {
  uint64_t n_tensors = 0, n_kv = 0;
  FRUGAL_RETURN_IF_ERROR(parse_header(&n_tensors, &n_kv));
  GgufCursor r(name_, data_, size_);
  r.seek(kHeaderBytes);
  FRUGAL_RETURN_IF_ERROR(parse_kvs(r, n_kv));
  // Records are appended as parsed, so memory grows with what the file really holds, not its counts.
  tensors_.reserve(std::min<uint64_t>(n_tensors, kReserveCap));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    tensors_.emplace_back();
    FRUGAL_RETURN_IF_ERROR(parse_tensor_info(r, k, &tensors_[k]));
    if (!tensor_index_.emplace(tensors_[k].name, k).second)
      return corrupt(name_ + ": duplicate tensor name " + quoted(tensors_[k].name));
  }
  // data_offset = align_up(end of tensor infos); alignment < 2^32 and pos <= size: no overflow.
  data_offset_ = (r.pos() + alignment_ - 1) / alignment_ * alignment_;
  return place_tensors();
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const GgufKV& kv : kvs_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const GgufTensorInfo* GgufFile::tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

// ---- typed getters ----

Status GgufFile::wrong_type(std::string_view key, const GgufValue& v, const char* expected) const {
  std::string got = gguf_type_name(v.type);
  if (v.type == GgufType::ARRAY) got = std::string("ARRAY of ") + gguf_type_name(v.elem_type);
  return invalid_argument(name_ + ": key " + quoted(key) + " has type " + got + ", expected " + expected);
}

Status GgufFile::missing(std::string_view key) const {
  return not_found(name_ + ": key " + quoted(key) + " not found");
}

StatusOr<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (!v->is_int()) return wrong_type(key, *v, "an integer");
  if (v->type == GgufType::UINT64 && v->u > (uint64_t)INT64_MAX)
    return out_of_range(name_ + ": key " + quoted(key) + ": value " + std::to_string(v->u) + " exceeds int64");
  return v->i;
}

StatusOr<int64_t> GgufFile::get_int(std::string_view key, int64_t dflt) const {
  if (!find(key)) return dflt;
  return get_int(key);
}

StatusOr<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (!v->is_float()) return wrong_type(key, *v, "FLOAT32 or FLOAT64");
  return v->f;
}

StatusOr<double> GgufFile::get_float(std::string_view key, double dflt) const {
  if (!find(key)) return dflt;
  return get_float(key);
}

StatusOr<bool> GgufFile::get_bool(std::string_view key, bool dflt) const {
  const GgufValue* v = find(key);
  if (!v) return dflt;
  if (v->type != GgufType::BOOL) return wrong_type(key, *v, "BOOL");
  return v->b;
}

StatusOr<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != GgufType::STRING) return wrong_type(key, *v, "STRING");
  return std::string(v->str);
}

StatusOr<std::string> GgufFile::get_string(std::string_view key, const std::string& dflt) const {
  if (!find(key)) return dflt;
  return get_string(key);
}

StatusOr<std::vector<std::string_view>> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != GgufType::ARRAY || v->elem_type != GgufType::STRING) return wrong_type(key, *v, "ARRAY of STRING");
  return v->strings;
}

StatusOr<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != GgufType::ARRAY || !is_int_type(v->elem_type)) return wrong_type(key, *v, "ARRAY of integers");
  std::vector<int64_t> out(v->count);
  for (uint64_t k = 0; k < v->count; ++k) {
    out[k] = v->array_int(k);
    if (v->elem_type == GgufType::UINT64 && out[k] < 0) {
      return out_of_range(name_ + ": key " + quoted(key) + ": element " + std::to_string(k) + " exceeds int64");
    }
  }
  return out;
}

StatusOr<std::vector<float>> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != GgufType::ARRAY || !(is_float_type(v->elem_type) || is_int_type(v->elem_type)))
    return wrong_type(key, *v, "ARRAY of numbers");
  std::vector<float> out(v->count);
  for (uint64_t k = 0; k < v->count; ++k) out[k] = (float)v->array_float(k);
  return out;
}

}  // namespace frugal
