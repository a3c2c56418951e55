#include "compress/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "base/half.h"

namespace frugal {

namespace {

using nlohmann::json;

StatusOr<DType> parse_dtype(const std::string& where, const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  return unsupported(where + ": dtype '" + s + "' is not supported (F32, F16, BF16)");
}

size_t elem_bytes(DType t) { return t == DType::F32 ? 4 : 2; }

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Reads one tensor entry of the header into `t` (data pointer still relative: offsets in begin/end).
Status parse_entry(const std::string& where, const json& v, uint64_t data_size, SafeTensor* t, uint64_t* begin,
                   uint64_t* end) {
  if (!v.is_object()) return corrupt(where + ": entry is not a JSON object");
  auto dt = v.find("dtype");
  auto sh = v.find("shape");
  auto off = v.find("data_offsets");
  if (dt == v.end() || !dt->is_string()) return corrupt(where + ": missing or non-string 'dtype'");
  if (sh == v.end() || !sh->is_array()) return corrupt(where + ": missing or non-array 'shape'");
  if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    return corrupt(where + ": 'data_offsets' must be two non-negative integers");
  FRUGAL_ASSIGN_OR_RETURN(t->dtype, parse_dtype(where, dt->get<std::string>()));
  uint64_t n = 1;
  for (const json& d : *sh) {
    if (!d.is_number_unsigned()) return corrupt(where + ": shape entries must be non-negative integers");
    const uint64_t x = d.get<uint64_t>();
    if (x > (uint64_t(1) << 40) || (x && n > (uint64_t(1) << 50) / x)) return corrupt(where + ": shape too large");
    n *= x;
    t->shape.push_back((int64_t)x);
  }
  *begin = (*off)[0].get<uint64_t>();
  *end = (*off)[1].get<uint64_t>();
  if (*begin > *end || *end > data_size)
    return corrupt(where + ": data_offsets [" + std::to_string(*begin) + ", " + std::to_string(*end) +
                   ") out of the data area (" + std::to_string(data_size) + " bytes)");
  if (*end - *begin != n * elem_bytes(t->dtype))
    return corrupt(where + ": " + std::to_string(*end - *begin) + " bytes for shape of " + std::to_string(n) +
                   " elements of " + dt->get<std::string>());
  return Status::Ok();
}

}  // namespace

int64_t SafeTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> SafeTensor::to_f32() const {
  const int64_t n = numel();
  std::vector<float> out((size_t)n);
  if (dtype == DType::F32) {
    std::memcpy(out.data(), data, (size_t)n * 4);
    return out;
  }
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, data + 2 * i, 2);
    out[(size_t)i] = dtype == DType::F16 ? fp16_to_f32(h) : bf16_to_f32(h);
  }
  return out;
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  FRUGAL_ASSIGN_OR_RETURN(f->file_, MappedFile::open(path));
  FRUGAL_RETURN_IF_ERROR(f->parse());
  return f;
}

Status SafetensorsFile::parse() {
  const uint8_t* p = file_->data();
  const uint64_t size = file_->size();
  if (size < 8) return corrupt(path_ + ": " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= (uint64_t)p[i] << (8 * i);
  if (n > size - 8)
    return corrupt(path_ + ": header length " + std::to_string(n) + " past the end of the file (" +
                   std::to_string(size) + " bytes; truncated?)");
  const json h = json::parse(p + 8, p + 8 + n, nullptr, /*allow_exceptions=*/false);
  if (h.is_discarded() || !h.is_object()) return corrupt(path_ + ": header is not a JSON object");
  const uint8_t* data = p + 8 + n;
  const uint64_t data_size = size - 8 - n;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // (begin, end) per tensor, for the overlap check
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return corrupt(path_ + ": __metadata__ is not a JSON object");
      for (auto m = it->begin(); m != it->end(); ++m)
        if (m->is_string()) metadata_[m.key()] = m->get<std::string>();
      continue;
    }
    SafeTensor t;
    t.name = it.key();
    t.file = path_;
    uint64_t b = 0, e = 0;
    FRUGAL_RETURN_IF_ERROR(parse_entry(path_ + ": tensor '" + t.name + "'", *it, data_size, &t, &b, &e));
    t.data = data + b;
    t.nbytes = e - b;
    ranges.emplace_back(b, e);
    tensors_.push_back(std::move(t));
  }
  // Overlaps: sort by begin; empty tensors never overlap.
  std::vector<size_t> order(tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  uint64_t reach = 0;
  size_t last = 0;
  bool any = false;
  for (size_t i : order) {
    if (ranges[i].first == ranges[i].second) continue;
    if (any && ranges[i].first < reach)
      return corrupt(path_ + ": tensor '" + tensors_[i].name + "' overlaps tensor '" + tensors_[last].name + "'");
    reach = ranges[i].second;
    last = i;
    any = true;
  }
  // File order = data order (what a user expects when listing).
  std::vector<SafeTensor> sorted;
  sorted.reserve(tensors_.size());
  for (size_t i : order) sorted.push_back(std::move(tensors_[i]));
  tensors_ = std::move(sorted);
  return Status::Ok();
}

Status SafetensorsCheckpoint::add_file(std::unique_ptr<SafetensorsFile> f) {
  for (const SafeTensor& t : f->tensors()) {
    if (!by_name_.emplace(t.name, &t).second)
      return corrupt(f->path() + ": tensor '" + t.name + "' is also in " + by_name_[t.name]->file);
  }
  for (const auto& [k, v] : f->metadata()) aliases_.emplace(k, v);
  files_.push_back(std::move(f));
  return Status::Ok();
}

StatusOr<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::open(const std::string& dir) {
  std::unique_ptr<SafetensorsCheckpoint> c(new SafetensorsCheckpoint());
  const std::string index = dir + "/model.safetensors.index.json";
  if (file_exists(index)) {
    std::ifstream in(index, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const json j = json::parse(ss.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      return corrupt(index + ": not a JSON object with a 'weight_map' object");
    std::map<std::string, std::vector<std::string>> shards;  // file -> tensors it must hold
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it->is_string()) return corrupt(index + ": weight_map['" + it.key() + "'] is not a string");
      const std::string shard = it->get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
        return corrupt(index + ": weight_map['" + it.key() + "']: bad shard name '" + shard + "'");
      shards[shard].push_back(it.key());
    }
    for (const auto& [shard, names] : shards) {
      FRUGAL_ASSIGN_OR_RETURN(auto f, SafetensorsFile::open(dir + "/" + shard));
      const std::string path = f->path();
      FRUGAL_RETURN_IF_ERROR(c->add_file(std::move(f)));
      for (const std::string& n : names)
        if (!c->by_name_.count(n))
          return corrupt(index + ": tensor '" + n + "' is mapped to " + path + ", which does not hold it");
    }
  } else {
    const std::string single = dir + "/model.safetensors";
    if (!file_exists(single))
      return not_found(dir + ": neither model.safetensors nor model.safetensors.index.json found");
    FRUGAL_ASSIGN_OR_RETURN(auto f, SafetensorsFile::open(single));
    FRUGAL_RETURN_IF_ERROR(c->add_file(std::move(f)));
  }
  // Keep only aliases that name a dropped tensor and point at a stored one ("format": "pt" etc. are not).
  for (auto it = c->aliases_.begin(); it != c->aliases_.end();) {
    if (c->by_name_.count(it->first) || !c->by_name_.count(it->second)) it = c->aliases_.erase(it);
    else ++it;
  }
  return c;
}

const SafeTensor* SafetensorsCheckpoint::find(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it != by_name_.end()) return it->second;
  auto a = aliases_.find(name);
  if (a == aliases_.end()) return nullptr;
  it = by_name_.find(a->second);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& f : files_)
    for (const SafeTensor& t : f->tensors()) out.push_back(t.name);
  return out;
}

}  // namespace frugal
