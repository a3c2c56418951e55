#include "tokenizer/flat_map.h"

namespace frugal {

uint64_t hash_bytes(const void* data, size_t n) {
  // 8 bytes at a time with a multiply-xorshift mix; tokens are short, so simplicity beats throughput.
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xC2B2AE3D27D4EB4FULL);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = hash_u64(h ^ w);
    p += 8;
    n -= 8;
  }
  uint64_t tail = 0;
  if (n > 0) std::memcpy(&tail, p, n);
  return hash_u64(h ^ tail ^ (static_cast<uint64_t>(n) << 56));
}

void StringIdMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap <<= 1;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  size_ = 0;
  for (const Slot& s : old) {
    if (s.id != kAbsent) insert(std::string_view(s.data, s.len), s.id);
  }
}

void StringIdMap::grow() { reserve(slots_.empty() ? 8 : slots_.size()); }

int32_t StringIdMap::insert(std::string_view key, int32_t id) {
  if (2 * (size_ + 1) > slots_.size()) grow();
  const uint64_t h64 = hash_bytes(key.data(), key.size());
  const auto h = static_cast<uint32_t>(h64 >> 32);
  for (size_t i = h64 & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.id == kAbsent) {
      s = {key.data(), static_cast<uint32_t>(key.size()), h, id};
      ++size_;
      return id;
    }
    if (s.hash == h && s.len == key.size() && std::memcmp(s.data, key.data(), key.size()) == 0) return s.id;
  }
}

int32_t StringIdMap::find(std::string_view key) const {
  if (slots_.empty()) return kAbsent;
  const uint64_t h64 = hash_bytes(key.data(), key.size());
  const auto h = static_cast<uint32_t>(h64 >> 32);
  for (size_t i = h64 & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.id == kAbsent) return kAbsent;
    if (s.hash == h && s.len == key.size() && std::memcmp(s.data, key.data(), key.size()) == 0) return s.id;
  }
}

}  // namespace frugal
