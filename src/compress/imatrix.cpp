#include "compress/imatrix.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "gguf/gguf_file.h"

namespace frugal {

std::vector<ObservedTensor> observed_tensors(const GgufFile& f) {
  std::vector<ObservedTensor> out;
  for (const GgufTensorInfo& t : f.tensors()) {
    if (t.n_dims < 2 || t.nbytes == 0) continue;
    ObservedTensor o;
    o.name = t.name;
    o.begin = t.data;
    o.bytes = (size_t)t.nbytes;
    o.K = t.ne[0];
    o.n_slices = t.ne[2] * t.ne[3];
    out.push_back(std::move(o));
  }
  return out;
}

Imatrix imatrix_from_stats(const std::map<std::string, ActivationStats>& stats, int32_t chunks,
                           const std::string& dataset) {
  Imatrix m;
  m.chunks = chunks;
  if (!dataset.empty()) m.datasets.push_back(dataset);
  for (const auto& [name, s] : stats) {
    bool any = false;
    for (int64_t c : s.count) any = any || c > 0;
    if (!any) continue;
    ImatrixEntry e;
    e.ncall = chunks > 0 ? chunks : 1;
    e.values.resize((size_t)(s.K * s.n_slices));
    for (int64_t sl = 0; sl < s.n_slices; ++sl)
      for (int64_t k = 0; k < s.K; ++k) e.values[(size_t)(sl * s.K + k)] = (float)s.mean_sq(sl, k);
    e.counts = s.count;
    m.entries.emplace(name, std::move(e));
  }
  return m;
}

Status merge_imatrix(Imatrix* into, const Imatrix& from, const std::string& from_name) {
  std::map<std::string, ImatrixEntry> merged;
  for (const auto& [name, b] : from.entries) {
    auto it = into->entries.find(name);
    if (it == into->entries.end()) continue;
    const ImatrixEntry& a = it->second;
    if (a.values.size() != b.values.size())
      return invalid_argument(from_name + ": tensor '" + name + "' has " + std::to_string(b.values.size()) +
                              " values, the imatrix it is merged into " + std::to_string(a.values.size()) +
                              " (statistics of a different model?)");
    ImatrixEntry e;
    e.ncall = std::max(a.ncall, 1) + std::max(b.ncall, 1);
    e.values.resize(a.values.size());
    const bool by_count = !a.counts.empty() && !b.counts.empty();
    if (by_count) {
      if (a.counts.size() != b.counts.size() || a.values.size() % a.counts.size() != 0)
        return invalid_argument(from_name + ": tensor '" + name + "' has " + std::to_string(b.counts.size()) +
                                " slices (experts), the imatrix it is merged into " + std::to_string(a.counts.size()));
      const size_t per = a.values.size() / a.counts.size();
      e.counts.resize(a.counts.size());
      for (size_t sl = 0; sl < a.counts.size(); ++sl) {
        const int64_t ca = a.counts[sl], cb = b.counts[sl];
        e.counts[sl] = ca + cb;
        for (size_t i = sl * per; i < (sl + 1) * per; ++i)
          e.values[i] = ca + cb == 0 ? 1.0f
                                     : (float)(((double)a.values[i] * (double)ca + (double)b.values[i] * (double)cb) /
                                               (double)(ca + cb));
      }
    } else {  // a .dat side: weighted by the chunks behind each mean
      const double na = std::max(a.ncall, 1), nb = std::max(b.ncall, 1);
      for (size_t i = 0; i < e.values.size(); ++i)
        e.values[i] = (float)(((double)a.values[i] * na + (double)b.values[i] * nb) / (na + nb));
    }
    merged.emplace(name, std::move(e));
  }
  for (auto& [name, e] : merged) into->entries[name] = std::move(e);
  for (const auto& [name, b] : from.entries) into->entries.emplace(name, b);  // only in `from`
  into->chunks += from.chunks;
  if (into->chunk_size == 0) into->chunk_size = from.chunk_size;
  into->datasets.insert(into->datasets.end(), from.datasets.begin(), from.datasets.end());
  return Status::Ok();
}

namespace {

void put_i32(std::vector<uint8_t>& out, int32_t v) {
  uint8_t b[4];
  std::memcpy(b, &v, 4);
  out.insert(out.end(), b, b + 4);
}

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool i32(int32_t* v) {
    if (n_ - pos_ < 4) return false;
    std::memcpy(v, p_ + pos_, 4);
    pos_ += 4;
    return true;
  }
  bool bytes(void* dst, size_t n) {
    if (n_ - pos_ < n) return false;
    std::memcpy(dst, p_ + pos_, n);
    pos_ += n;
    return true;
  }
  bool at_end() const { return pos_ == n_; }
  size_t pos() const { return pos_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

}  // namespace

std::vector<uint8_t> imatrix_dat_bytes(const Imatrix& m) {
  std::vector<uint8_t> out;
  put_i32(out, (int32_t)m.entries.size());
  for (const auto& [name, e] : m.entries) {
    put_i32(out, (int32_t)name.size());
    out.insert(out.end(), name.begin(), name.end());
    const int32_t ncall = e.ncall > 0 ? e.ncall : 1;
    put_i32(out, ncall);
    put_i32(out, (int32_t)e.values.size());
    for (float v : e.values) {
      const float s = v * (float)ncall;
      uint8_t b[4];
      std::memcpy(b, &s, 4);
      out.insert(out.end(), b, b + 4);
    }
  }
  put_i32(out, m.chunks);
  std::string dataset;
  for (const std::string& d : m.datasets) dataset += (dataset.empty() ? "" : ", ") + d;
  put_i32(out, (int32_t)dataset.size());
  out.insert(out.end(), dataset.begin(), dataset.end());
  return out;
}

Status write_imatrix_dat(const Imatrix& m, const std::string& path) {
  const std::vector<uint8_t> bytes = imatrix_dat_bytes(m);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return io_error(path + ": cannot open for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), (std::streamsize)bytes.size());
  if (!f) return io_error(path + ": write failed");
  return Status::Ok();
}

StatusOr<Imatrix> parse_imatrix_dat(const uint8_t* data, size_t size, const std::string& name) {
  Reader r(data, size);
  Imatrix m;
  int32_t n = 0;
  if (!r.i32(&n) || n < 0) return corrupt(name + ": not an imatrix.dat (bad entry count)");
  for (int32_t i = 0; i < n; ++i) {
    const std::string at = name + ": entry " + std::to_string(i);
    int32_t len = 0, ncall = 0, nval = 0;
    if (!r.i32(&len) || len <= 0 || len > 4096) return corrupt(at + ": bad name length");
    std::string tname((size_t)len, '\0');
    if (!r.bytes(tname.data(), (size_t)len)) return corrupt(at + ": truncated name");
    if (!r.i32(&ncall) || !r.i32(&nval) || nval < 0) return corrupt(at + " ('" + tname + "'): truncated or negative size");
    ImatrixEntry e;
    e.ncall = ncall;
    e.values.resize((size_t)nval);
    if (!r.bytes(e.values.data(), (size_t)nval * 4)) return corrupt(at + " ('" + tname + "'): truncated values");
    if (ncall > 0)
      for (float& v : e.values) v /= (float)ncall;
    if (!m.entries.emplace(tname, std::move(e)).second) return corrupt(at + ": duplicate tensor '" + tname + "'");
  }
  if (r.at_end()) return m;
  int32_t chunks = 0, len = 0;
  if (!r.i32(&chunks) || !r.i32(&len) || len < 0) return corrupt(name + ": truncated trailer");
  m.chunks = chunks;
  std::string dataset((size_t)len, '\0');
  if (!r.bytes(dataset.data(), (size_t)len)) return corrupt(name + ": truncated dataset name");
  if (!dataset.empty()) m.datasets.push_back(std::move(dataset));
  return m;
}

StatusOr<Imatrix> read_imatrix_dat(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found(path + ": cannot open imatrix file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return parse_imatrix_dat(bytes.data(), bytes.size(), path);
}

}  // namespace frugal
