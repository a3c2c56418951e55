// Portable random numbers: splitmix64 (seeding, hashing a seed into independent streams) and
// xoshiro256** (Blackman & Vigna) with its state filled from splitmix64. The same seed gives the same
// sequence on every platform and compiler (unlike std:: distributions).
#pragma once

#include <cstdint>

namespace frugal {

// Advances *state and returns the next splitmix64 output.
inline uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) { reseed(seed); }
  void reseed(uint64_t seed) {
    uint64_t st = seed;
    for (uint64_t& s : s_) s = splitmix64(&st);
  }
  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1), 53 bits.
  double next_double() { return (double)(next_u64() >> 11) * 0x1.0p-53; }
  // Uniform in (0, 1]: never 0, so log() of it is finite.
  double next_double_open0() { return (double)((next_u64() >> 11) + 1) * 0x1.0p-53; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace frugal
