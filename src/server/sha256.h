// SHA-256 (FIPS 180-4): API-key digests (constant-time comparison of fixed-length values) and response
// cache keys. Pure functions, thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace frugal {

using Sha256Digest = std::array<uint8_t, 32>;

// Incremental hasher: update() any number of times, then digest() once (the object is spent after).
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  Sha256Digest digest();

 private:
  void compress(const uint8_t* block);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

Sha256Digest sha256(std::string_view data);
// Lower-case hex, 64 characters.
std::string to_hex(const Sha256Digest& d);
std::string sha256_hex(std::string_view data);

// Digest equality in time independent of where (or whether) the inputs differ.
bool digests_equal_ct(const Sha256Digest& a, const Sha256Digest& b);

}  // namespace frugal
