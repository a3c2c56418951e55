// Open-addressing hash maps for the tokenizer's hot lookups (vocabulary text -> id, merge pair -> rule).
// std::unordered_map costs several cache misses per lookup (bucket, node, key); these tables keep the key
// reference, a 32-bit hash and the value in one slot, so a lookup touches one slot and, on a hash match,
// the key bytes. Linear probing, load factor <= 1/2, no erase.
//
// Thread-safety: concurrent find() is safe; insert() needs exclusive access.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace frugal {

uint64_t hash_bytes(const void* data, size_t n);

inline uint64_t hash_u64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// string_view -> int32_t. Keys are views: the caller keeps the bytes alive and unchanged.
class StringIdMap {
 public:
  static constexpr int32_t kAbsent = -1;

  void reserve(size_t n);
  // Inserts unless present; returns the id now stored for `key` (the existing one if present).
  int32_t insert(std::string_view key, int32_t id);
  int32_t find(std::string_view key) const;
  size_t size() const { return size_; }

 private:
  struct Slot {
    const char* data = nullptr;
    uint32_t len = 0;
    uint32_t hash = 0;
    int32_t id = kAbsent;
  };
  void grow();

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

// uint64_t -> V (V trivially copyable). Key ~0 is reserved as "empty".
template <typename V>
class U64Map {
 public:
  static constexpr uint64_t kEmpty = ~0ULL;

  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    if (cap > slots_.size()) rehash(cap);
  }
  // Inserts unless present; returns false if the key was already there (value unchanged).
  bool insert(uint64_t key, const V& value) {
    if (2 * (size_ + 1) > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
    for (size_t i = hash_u64(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return false;
      if (slots_[i].key == kEmpty) {
        slots_[i] = {key, value};
        ++size_;
        return true;
      }
    }
  }
  const V* find(uint64_t key) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = hash_u64(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].value;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key = kEmpty;
    V value{};
  };
  void rehash(size_t cap) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    size_ = 0;
    for (const Slot& s : old) {
      if (s.key != kEmpty) insert(s.key, s.value);
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace frugal
