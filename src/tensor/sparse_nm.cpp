#include "tensor/sparse_nm.h"

#include <array>
#include <bit>
#include <cstring>

#include "base/check.h"

namespace frugal {

namespace {

struct Pattern {
  int n, m;
};
constexpr Pattern kPatterns[] = {{1, 4}, {2, 4}, {1, 8}, {2, 8}, {4, 8}, {4, 16}, {8, 16}};
constexpr int kNumPatterns = (int)(sizeof(kPatterns) / sizeof(kPatterns[0]));
constexpr DType kBases[] = {DType::F16, DType::Q8_0, DType::Q4_0};  // in id order
constexpr uint32_t kFirstId[] = {310, 320, 330};

constexpr SparseTypeInfo make_info(int b, int p) {
  const DType base = kBases[b];
  const int k = 32 * kPatterns[p].n / kPatterns[p].m;
  SparseTypeInfo i{};
  i.type = (DType)(kFirstId[b] + (uint32_t)p);
  i.base = base;
  i.n = kPatterns[p].n;
  i.m = kPatterns[p].m;
  i.kept = k;
  i.d_bytes = base == DType::F16 ? 0 : 2;
  i.code_bits = kPatterns[p].m != 4 ? 0 : kPatterns[p].n == 1 ? 2 : 3;
  i.mask_bytes = i.code_bits == 0 ? 4 : (size_t)i.code_bits;  // 8 groups x code_bits bits
  i.kept_bytes = (size_t)(base == DType::Q8_0 ? k : base == DType::Q4_0 ? k / 2 : 2 * k);
  i.block_bytes = i.d_bytes + i.mask_bytes + i.kept_bytes;
  i.kept_lanes = kPatterns[p].m == 4 && base != DType::F16;
  i.dense_block_bytes = base == DType::Q8_0 ? 34 : base == DType::Q4_0 ? 18 : 64;
  return i;
}

constexpr std::array<SparseTypeInfo, 3 * kNumPatterns> kInfos = [] {
  std::array<SparseTypeInfo, 3 * kNumPatterns> a{};
  for (int b = 0; b < 3; ++b)
    for (int p = 0; p < kNumPatterns; ++p) a[(size_t)(b * kNumPatterns + p)] = make_info(b, p);
  return a;
}();

// The nibble of 2:4 position code c (tensor/sparse_nm.h).
constexpr unsigned pair_nibble(unsigned c) { return 1u << kSparsePairs24[c][0] | 1u << kSparsePairs24[c][1]; }

template <int kBits, size_t kSize>
constexpr std::array<uint16_t, kSize> code_mask_table() {
  std::array<uint16_t, kSize> t{};
  for (size_t c = 0; c < kSize; ++c) {
    uint16_t m = 0;
    for (int g = 0; g < 4; ++g) {
      const unsigned code = (unsigned)(c >> (kBits * g)) & ((1u << kBits) - 1);
      const unsigned nib = kBits == 2 ? 1u << code : code < 6 ? pair_nibble(code) : 0u;
      m = (uint16_t)(m | nib << (4 * g));
    }
    t[c] = m;
  }
  return t;
}
uint32_t group_mask(int m) { return m == 32 ? 0xFFFFFFFFu : (1u << m) - 1; }

// Kept value k (4-bit code for Q4_0) of a block's kept values in the per-block form.
uint8_t block_value(const SparseTypeInfo& f, const uint8_t* kv, int k) {
  if (f.base == DType::Q8_0) return kv[k];
  const int half = f.kept / 2;
  return k < half ? kv[k] & 0x0F : kv[k - half] >> 4;
}

// Rewrites a full group's kept plane from the per-block form into lanes.
void blocks_to_lanes(const SparseTypeInfo& f, uint8_t* kept) {
  const size_t bytes = kSparseGroupBlocks * f.kept_bytes;
  uint8_t blocks[kSparseGroupBlocks * 16];
  std::memcpy(blocks, kept, bytes);
  std::memset(kept, 0, bytes);
  for (int i = 0; i < kSparseGroupBlocks; ++i) {
    for (int k = 0; k < f.kept; ++k) {
      const uint8_t v = block_value(f, blocks + (size_t)i * f.kept_bytes, k);
      if (f.base == DType::Q8_0) {
        kept[64 * (k / 4) + 4 * i + k % 4] = v;
      } else {
        kept[32 * (k / 4) + 4 * (i % 8) + k % 4] |= (uint8_t)(i < 8 ? v : v << 4);
      }
    }
  }
}

}  // namespace

const uint8_t* sparse_block_kept(const SparseTypeInfo& f, const SparseGroup& grp, int64_t i, uint8_t* tmp) {
  if (!sparse_group_in_lanes(f, grp)) return grp.p.kept + (size_t)i * f.kept_bytes;
  if (f.base == DType::Q8_0) {
    for (int c = 0; c < f.kept / 4; ++c) std::memcpy(tmp + 4 * c, grp.p.kept + 64 * c + 4 * i, 4);
    return tmp;
  }
  uint8_t v[16];  // the block's K codes, 4 per chunk
  for (int c = 0; c < f.kept / 4; ++c) {
    uint32_t w;
    std::memcpy(&w, grp.p.kept + 32 * c + 4 * (i % 8), 4);
    w = (i < 8 ? w : w >> 4) & 0x0F0F0F0Fu;
    std::memcpy(v + 4 * c, &w, 4);
  }
  const int half = f.kept / 2;
  for (int t = 0; t < half; ++t) tmp[t] = (uint8_t)(v[t] | v[t + half] << 4);
  return tmp;
}

const std::array<uint16_t, 4096> kSparseCodeMask24 = code_mask_table<3, 4096>();
const std::array<uint16_t, 256> kSparseCodeMask14 = code_mask_table<2, 256>();

void sparse_set_mask(const SparseTypeInfo& f, uint8_t* plane, int64_t i, uint32_t mask) {
  uint8_t* p = plane + (size_t)i * f.mask_bytes;
  const uint32_t gm = group_mask(f.m);
  for (int g = 0; g < 32 / f.m; ++g) FRUGAL_CHECK(std::popcount((mask >> (g * f.m)) & gm) == f.n);
  if (f.code_bits == 0) {
    std::memcpy(p, &mask, 4);
    return;
  }
  uint32_t word = 0;
  for (int g = 0; g < 8; ++g) {
    const uint32_t nib = mask >> (4 * g) & 0xF;
    uint32_t code = 0;
    if (f.code_bits == 2) {
      code = (uint32_t)std::countr_zero(nib);
    } else {
      while (pair_nibble(code) != nib) ++code;
    }
    word |= code << (f.code_bits * g);
  }
  for (size_t b = 0; b < f.mask_bytes; ++b) p[b] = (uint8_t)(word >> (8 * b));
}

int sparse_type_count() { return (int)kInfos.size(); }

const SparseTypeInfo& sparse_type_at(int i) {
  FRUGAL_CHECK(i >= 0 && i < sparse_type_count());
  return kInfos[(size_t)i];
}

const SparseTypeInfo* sparse_type_info(DType t) {
  const uint32_t id = (uint32_t)t;
  for (int b = 0; b < 3; ++b)
    if (id >= kFirstId[b] && id < kFirstId[b] + (uint32_t)kNumPatterns) return &kInfos[(size_t)(b * kNumPatterns + (int)(id - kFirstId[b]))];
  return nullptr;
}

bool sparse_type_for(DType base, int n, int m, DType* out) {
  for (const SparseTypeInfo& i : kInfos) {
    if (i.base == base && i.n == n && i.m == m) {
      *out = i.type;
      return true;
    }
  }
  return false;
}

bool parse_sparse_pattern(const std::string& s, int* n, int* m) {
  const size_t colon = s.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= s.size()) return false;
  try {
    size_t used = 0;
    const int a = std::stoi(s.substr(0, colon), &used);
    if (used != colon) return false;
    const int b = std::stoi(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1) return false;
    for (const Pattern& p : kPatterns) {
      if (p.n == a && p.m == b) {
        *n = a;
        *m = b;
        return true;
      }
    }
  } catch (...) {
    return false;
  }
  return false;
}

std::string sparse_patterns_string() {
  std::string s;
  for (const Pattern& p : kPatterns) s += (s.empty() ? "" : ", ") + std::to_string(p.n) + ":" + std::to_string(p.m);
  return s;
}

bool is_retired_sparse_type_id(uint32_t id) { return id >= 200 && id <= 306 && id % 10 <= 6; }

Status validate_sparse_rows(const SparseTypeInfo& f, const void* data, int64_t n, int64_t rows,
                            const std::string& what) {
  const int64_t nb = n / kSparseBlock;
  const uint32_t gm = group_mask(f.m);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = static_cast<const uint8_t*>(data) + (size_t)r * nb * f.block_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      const SparseGroup grp = sparse_group(f, row, nb, b / kSparseGroupBlocks);
      if (f.code_bits == 3) {
        const uint8_t* c = grp.p.mask + 3 * (b - grp.b0);
        const uint32_t word = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16;
        for (int g = 0; g < 8; ++g)
          if ((word >> (3 * g) & 7) > 5)
            return corrupt(what + ": malformed " + dtype_name(f.type) + " data: row " + std::to_string(r) + " block " +
                           std::to_string(b) + " group " + std::to_string(g) + " has keep code " +
                           std::to_string(word >> (3 * g) & 7) + ", the format has codes 0..5 (bad keep code)");
        continue;
      }
      if (f.code_bits == 2) continue;  // every 2-bit code is a position
      const uint32_t mask = sparse_mask(f, grp.p.mask, b - grp.b0);
      if (std::popcount(mask) == f.kept) {
        bool ok = true;
        for (int g = 0; g < 32 / f.m && ok; ++g) ok = std::popcount((mask >> (g * f.m)) & gm) == f.n;
        if (ok) continue;
      }
      for (int g = 0; g < 32 / f.m; ++g) {
        const int bits = std::popcount((mask >> (g * f.m)) & gm);
        if (bits != f.n)
          return corrupt(what + ": malformed " + dtype_name(f.type) + " data: row " + std::to_string(r) + " block " +
                         std::to_string(b) + " group " + std::to_string(g) + " keeps " + std::to_string(bits) +
                         " of " + std::to_string(f.m) + " elements, the format requires exactly " +
                         std::to_string(f.n) + " (bad keep mask)");
      }
    }
  }
  return Status::Ok();
}

void sparse_expand_row(const SparseTypeInfo& f, const void* src, void* dst, int64_t n) {
  const int64_t nb = n / kSparseBlock;
  auto* d = static_cast<uint8_t*>(dst);
  for (int64_t b = 0; b < nb; ++b, d += f.dense_block_bytes) {
    const SparseGroup grp = sparse_group(f, src, nb, b / kSparseGroupBlocks);
    const int64_t i = b - grp.b0;
    const uint32_t mask = sparse_mask(f, grp.p.mask, i);
    uint8_t tmp[64];
    const uint8_t* kv = sparse_block_kept(f, grp, i, tmp);
    if (f.base == DType::F16) {
      std::memset(d, 0, 64);
      int k = 0;
      for (int j = 0; j < 32; ++j)
        if (mask >> j & 1) std::memcpy(d + 2 * j, kv + 2 * k++, 2);
      continue;
    }
    std::memcpy(d, grp.p.d + 2 * i, 2);  // d
    uint8_t codes[32];
    const bool q8 = f.base == DType::Q8_0;
    int k = 0;
    const int half = f.kept / 2;
    for (int j = 0; j < 32; ++j) {
      if (!(mask >> j & 1)) {
        codes[j] = q8 ? 0 : 8;
        continue;
      }
      codes[j] = q8 ? kv[k] : (uint8_t)(k < half ? kv[k] & 0x0F : kv[k - half] >> 4);
      ++k;
    }
    if (q8) {
      std::memcpy(d + 2, codes, 32);
    } else {
      for (int j = 0; j < 16; ++j) d[2 + j] = (uint8_t)(codes[j] | codes[j + 16] << 4);
    }
  }
}

void sparse_compress_row(const SparseTypeInfo& f, const void* dense, const uint32_t* masks, void* dst, int64_t n) {
  const int64_t nb = n / kSparseBlock;
  const auto* s = static_cast<const uint8_t*>(dense);
  auto* out = static_cast<uint8_t*>(dst);
  std::memset(out, 0, (size_t)nb * f.block_bytes);
  for (int64_t b = 0; b < nb; ++b, s += f.dense_block_bytes) {
    const SparseGroup grp = sparse_group(f, out, nb, b / kSparseGroupBlocks);
    const int64_t i = b - grp.b0;
    const uint32_t mask = masks[b];
    FRUGAL_CHECK(std::popcount(mask) == f.kept);
    if (f.base != DType::F16) std::memcpy(out + (grp.p.d - out) + 2 * i, s, 2);
    sparse_set_mask(f, out + (grp.p.mask - out), i, mask);
    uint8_t* kv = out + (grp.p.kept - out) + (size_t)i * f.kept_bytes;
    int k = 0;
    const int half = f.kept / 2;
    for (int j = 0; j < 32; ++j) {
      const bool keep = mask >> j & 1;
      if (f.base == DType::F16) {
        uint16_t h;
        std::memcpy(&h, s + 2 * j, 2);
        FRUGAL_CHECK_MSG(keep || (h & 0x7FFF) == 0, "sparse_compress_row: dropped element is not zero");
        if (keep) std::memcpy(kv + 2 * k++, &h, 2);
        continue;
      }
      const uint8_t c = f.base == DType::Q8_0 ? s[2 + j] : (uint8_t)(j < 16 ? s[2 + j] & 0x0F : s[2 + j - 16] >> 4);
      FRUGAL_CHECK_MSG(keep || c == (f.base == DType::Q8_0 ? 0 : 8), "sparse_compress_row: dropped element is not zero");
      if (!keep) continue;
      if (f.base == DType::Q8_0) {
        kv[k] = c;
      } else if (k < half) {
        kv[k] = c;
      } else {
        kv[k - half] = (uint8_t)(kv[k - half] | c << 4);
      }
      ++k;
    }
  }
  for (int64_t g = 0; g < sparse_group_count(nb); ++g) {
    const SparseGroup grp = sparse_group(f, out, nb, g);
    if (sparse_group_in_lanes(f, grp)) blocks_to_lanes(f, out + (grp.p.kept - out));
  }
}

}  // namespace frugal
