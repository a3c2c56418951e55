// GGUF imatrix files (llama-imatrix's default output format): reading, writing, and choosing between GGUF
// and the legacy imatrix.dat. Format and rules: compress/imatrix.h.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include "compress/imatrix.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"

namespace frugal {

namespace {

constexpr char kSumSuffix[] = ".in_sum2";
constexpr char kCountSuffix[] = ".counts";
constexpr size_t kMaxGgufName = 63;  // GGUF tensor names are shorter than 64 bytes

bool strip_suffix(std::string* s, const std::string& suffix) {
  if (s->size() <= suffix.size() || !s->ends_with(suffix)) return false;
  s->resize(s->size() - suffix.size());
  return true;
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// The counts written for `e`: its own, or (from .dat, means only) one count of ncall * chunk_size.
std::vector<int64_t> counts_to_write(const ImatrixEntry& e, int32_t chunk_size) {
  if (!e.counts.empty()) return e.counts;
  return {(int64_t)std::max(e.ncall, 1) * std::max(chunk_size, 1)};
}

struct SumCount {
  const GgufTensorInfo* sums = nullptr;
  const GgufTensorInfo* counts = nullptr;
};

// One entry from its two tensors (both present). `file` prefixes errors.
StatusOr<ImatrixEntry> read_entry(const std::string& file, const std::string& name, const SumCount& sc,
                                  int32_t chunk_size, int32_t chunk_count) {
  const std::string sums_name = name + kSumSuffix, counts_name = name + kCountSuffix;
  for (const GgufTensorInfo* t : {sc.sums, sc.counts})
    if (t->type != DType::F32)
      return corrupt(file + ": tensor '" + t->name + "' is " + dtype_name(t->type) + ", expected F32");
  const int64_t nval = sc.sums->n_elements(), nmat = sc.counts->n_elements();
  if (nval % nmat != 0)
    return corrupt(file + ": tensor '" + sums_name + "' has " + std::to_string(nval) + " values " +
                   sc.sums->shape_string() + ", not a multiple of the " + std::to_string(nmat) + " counts of '" +
                   counts_name + "' " + sc.counts->shape_string());
  const float* sums = reinterpret_cast<const float*>(sc.sums->data);
  const float* cnts = reinterpret_cast<const float*>(sc.counts->data);
  ImatrixEntry e;
  e.counts.resize((size_t)nmat);
  for (int64_t j = 0; j < nmat; ++j) {
    float c;
    std::memcpy(&c, cnts + j, 4);
    if (!std::isfinite(c) || c < 0)
      return corrupt(file + ": tensor '" + counts_name + "' count " + std::to_string(j) + " is " +
                     std::to_string(c) + ", expected a finite count >= 0");
    e.counts[(size_t)j] = std::llround(c);
  }
  const int64_t per = nval / nmat;
  e.values.resize((size_t)nval);
  for (int64_t j = 0; j < nmat; ++j) {
    const float count = (float)e.counts[(size_t)j];
    for (int64_t i = 0; i < per; ++i) {
      float s;
      std::memcpy(&s, sums + j * per + i, 4);
      if (!std::isfinite(s))
        return corrupt(file + ": tensor '" + sums_name + "' value " + std::to_string(j * per + i) + " is not finite");
      // An expert (slice) that was never routed to has count 0 and no statistics: llama-quantize gives its
      // columns importance 1 (all equal, i.e. plain unweighted error), and so do we.
      e.values[(size_t)(j * per + i)] = count > 0 ? s / count : 1.0f;
    }
  }
  const int64_t max_count = *std::max_element(e.counts.begin(), e.counts.end());
  e.ncall = chunk_size > 0 ? (int32_t)((max_count + chunk_size - 1) / chunk_size) : chunk_count;
  return e;
}

// The metadata keys; errors name the file and the key.
Status read_metadata(const GgufFile& f, Imatrix* m) {
  const std::string& file = f.path();
  if (const GgufValue* t = f.find("general.type"); t && t->type == GgufType::STRING && t->str != "imatrix")
    return invalid_argument(file + ": general.type is '" + std::string(t->str) + "', not 'imatrix' (a model file?)");
  for (const char* key : {"imatrix.chunk_count", "imatrix.chunk_size", "imatrix.datasets"})
    if (!f.find(key)) return invalid_argument(file + ": not a GGUF imatrix: key '" + key + "' is missing");
  FRUGAL_ASSIGN_OR_RETURN(int64_t chunk_count, f.get_int("imatrix.chunk_count"));
  FRUGAL_ASSIGN_OR_RETURN(int64_t chunk_size, f.get_int("imatrix.chunk_size"));
  if (chunk_count < 0 || chunk_count > INT32_MAX || chunk_size < 0 || chunk_size > INT32_MAX)
    return corrupt(file + ": imatrix.chunk_count " + std::to_string(chunk_count) + " / imatrix.chunk_size " +
                   std::to_string(chunk_size) + " out of range");
  FRUGAL_ASSIGN_OR_RETURN(std::vector<std::string_view> datasets, f.get_string_array("imatrix.datasets"));
  m->chunks = (int32_t)chunk_count;
  m->chunk_size = (int32_t)chunk_size;
  for (std::string_view d : datasets) m->datasets.emplace_back(d);
  return Status::Ok();
}

}  // namespace

StatusOr<Imatrix> read_imatrix_gguf(const GgufFile& f) {
  const std::string& file = f.path();
  Imatrix m;
  FRUGAL_RETURN_IF_ERROR(read_metadata(f, &m));
  std::map<std::string, SumCount> pairs;
  for (const GgufTensorInfo& t : f.tensors()) {
    std::string name = t.name;
    if (strip_suffix(&name, kSumSuffix)) pairs[name].sums = &t;
    else if (strip_suffix(&name, kCountSuffix)) pairs[name].counts = &t;
  }
  if (pairs.empty()) return corrupt(file + ": GGUF imatrix without any NAME.in_sum2 / NAME.counts tensor");
  for (const auto& [name, sc] : pairs) {
    if (!sc.counts) return corrupt(file + ": tensor '" + name + kSumSuffix + "' has no matching '" + name + kCountSuffix + "'");
    if (!sc.sums) return corrupt(file + ": tensor '" + name + kCountSuffix + "' has no matching '" + name + kSumSuffix + "'");
    FRUGAL_ASSIGN_OR_RETURN(ImatrixEntry e, read_entry(file, name, sc, m.chunk_size, m.chunks));
    m.entries.emplace(name, std::move(e));
  }
  return m;
}

StatusOr<Imatrix> parse_imatrix_gguf(const uint8_t* data, size_t size, const std::string& name) {
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> f, GgufFile::from_memory(data, size, name));
  return read_imatrix_gguf(*f);
}

namespace {

StatusOr<GgufWriter> imatrix_writer(const Imatrix& m) {
  GgufWriter w;
  w.set_string("general.type", "imatrix");
  w.set_string_array("imatrix.datasets", m.datasets);
  w.set_u32("imatrix.chunk_count", (uint32_t)std::max(m.chunks, 0));
  w.set_u32("imatrix.chunk_size", (uint32_t)std::max(m.chunk_size, 0));
  for (const auto& [name, e] : m.entries) {
    if (e.values.empty()) continue;
    if (name.size() + sizeof(kSumSuffix) - 1 > kMaxGgufName)
      return invalid_argument("imatrix entry '" + name + "': name too long for a GGUF tensor name (" +
                              std::to_string(name.size()) + " bytes + '.in_sum2', limit 63)");
    const std::vector<int64_t> counts = counts_to_write(e, m.chunk_size);
    const int64_t nmat = (int64_t)counts.size(), nval = (int64_t)e.values.size();
    if (nval % nmat != 0)
      return invalid_argument("imatrix entry '" + name + "': " + std::to_string(nval) + " values for " +
                              std::to_string(nmat) + " counts");
    const int64_t per = nval / nmat;
    std::vector<float> sums((size_t)nval), cnt((size_t)nmat);
    for (int64_t j = 0; j < nmat; ++j) {
      const int64_t c = counts[(size_t)j];
      cnt[(size_t)j] = (float)c;
      for (int64_t i = 0; i < per; ++i)
        sums[(size_t)(j * per + i)] = c > 0 ? (float)((double)e.values[(size_t)(j * per + i)] * (double)c) : 0.0f;
    }
    w.add_tensor(name + kSumSuffix, DType::F32, {per, nmat}, f32_bytes(sums));
    w.add_tensor(name + kCountSuffix, DType::F32, {1, nmat}, f32_bytes(cnt));
  }
  return w;
}

}  // namespace

StatusOr<std::vector<uint8_t>> imatrix_gguf_bytes(const Imatrix& m) {
  FRUGAL_ASSIGN_OR_RETURN(GgufWriter w, imatrix_writer(m));
  return w.to_bytes();
}

Status write_imatrix_gguf(const Imatrix& m, const std::string& path) {
  StatusOr<GgufWriter> w = imatrix_writer(m);
  if (!w.ok()) return w.status().with_context(path);
  return w->write(path);
}

StatusOr<Imatrix> read_imatrix(const std::string& path) {
  char magic[4] = {};
  {
    std::ifstream f(path, std::ios::binary);
    if (!f) return not_found(path + ": cannot open imatrix file");
    f.read(magic, 4);
  }
  if (std::memcmp(magic, "GGUF", 4) != 0) return read_imatrix_dat(path);
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> f, GgufFile::open(path));
  return read_imatrix_gguf(*f);
}

ImatrixFormat imatrix_format_for_path(const std::string& path) {
  return path.ends_with(".dat") ? ImatrixFormat::kDat : ImatrixFormat::kGguf;
}

StatusOr<ImatrixFormat> parse_imatrix_format(const std::string& s) {
  if (s == "gguf") return ImatrixFormat::kGguf;
  if (s == "dat") return ImatrixFormat::kDat;
  return invalid_argument("imatrix output format '" + s + "': expected gguf or dat");
}

Status write_imatrix(const Imatrix& m, const std::string& path, ImatrixFormat format) {
  return format == ImatrixFormat::kDat ? write_imatrix_dat(m, path) : write_imatrix_gguf(m, path);
}

}  // namespace frugal
