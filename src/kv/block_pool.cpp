#include "kv/block_pool.h"

#include <algorithm>

#include "base/check.h"

namespace frugal {

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

// splitmix64's finalizer: a bijection on 64-bit words with full avalanche.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline uint64_t absorb(uint64_t h, uint64_t word) { return mix64(h + kGolden + word); }

}  // namespace

BlockHash hash_block(BlockHash parent, const int32_t* tokens, int32_t n_tokens, uint64_t salt) {
  FRUGAL_CHECK(n_tokens >= 0);
  uint64_t h = absorb(0x66727567616C6B76ull /* "frugalkv" */, parent);
  h = absorb(h, salt);
  h = absorb(h, static_cast<uint64_t>(n_tokens));
  for (int32_t i = 0; i < n_tokens; ++i) h = absorb(h, static_cast<uint32_t>(tokens[i]));
  return h;
}

BlockPool::BlockPool(int32_t n_blocks, int32_t block_size) : block_size_(block_size), blocks_(n_blocks) {
  FRUGAL_CHECK_MSG(n_blocks > 0, "a block pool needs at least one block");
  FRUGAL_CHECK_MSG(block_size > 0, "block_size must be positive");
  for (BlockId b = 0; b < n_blocks; ++b) push_tail(b);
}

int32_t BlockPool::n_blocks() const { return static_cast<int32_t>(blocks_.size()); }
int32_t BlockPool::block_size() const { return block_size_; }
int32_t BlockPool::n_free() const { return n_free_; }
int64_t BlockPool::n_cached() const { return static_cast<int64_t>(cached_.size()); }

int32_t BlockPool::ref_count(BlockId b) const {
  FRUGAL_CHECK(b >= 0 && b < n_blocks());
  return blocks_[b].ref;
}

std::optional<BlockHash> BlockPool::hash(BlockId b) const {
  FRUGAL_CHECK(b >= 0 && b < n_blocks());
  if (!blocks_[b].cached) return std::nullopt;
  return blocks_[b].hash;
}

CacheId BlockPool::cache_id(BlockId b) const {
  FRUGAL_CHECK(b >= 0 && b < n_blocks());
  return blocks_[b].cached ? blocks_[b].id : 0;
}

std::vector<BlockId> BlockPool::free_list() const {
  std::vector<BlockId> out;
  out.reserve(n_free_);
  for (BlockId b = head_; b != kNoBlock; b = blocks_[b].next) out.push_back(b);
  return out;
}

std::vector<BlockId> BlockPool::allocate(int32_t n) {
  FRUGAL_CHECK(n >= 0 && n <= n_free_);
  std::vector<BlockId> out;
  out.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    const BlockId b = head_;
    unlink(b);
    if (blocks_[b].cached) evict(b);
    blocks_[b].ref = 1;
    out.push_back(b);
  }
  return out;
}

void BlockPool::touch(BlockId b) {
  FRUGAL_CHECK(b >= 0 && b < n_blocks());
  if (blocks_[b].ref == 0) unlink(b);
  ++blocks_[b].ref;
}

void BlockPool::release(BlockId b) {
  FRUGAL_CHECK(b >= 0 && b < n_blocks());
  FRUGAL_CHECK_MSG(blocks_[b].ref > 0, "release of a free block");
  if (--blocks_[b].ref == 0) push_tail(b);
}

BlockId BlockPool::lookup(BlockHash h, const int32_t* tokens, CacheId parent_id) const {
  const auto it = cached_.find(h);
  if (it == cached_.end()) return kNoBlock;
  const Block& blk = blocks_[it->second];
  if (blk.parent_id != parent_id) return kNoBlock;
  if (!std::equal(blk.tokens.begin(), blk.tokens.end(), tokens)) return kNoBlock;
  return it->second;
}

void BlockPool::cache(BlockId b, BlockHash h, const int32_t* tokens, CacheId parent_id) {
  FRUGAL_CHECK(b >= 0 && b < n_blocks());
  Block& blk = blocks_[b];
  FRUGAL_CHECK_MSG(blk.ref > 0, "only a referenced (computed) block can be cached");
  FRUGAL_CHECK_MSG(!blk.cached, "block is already in the prefix cache");
  if (!cached_.emplace(h, b).second) return;
  blk.cached = true;
  blk.hash = h;
  blk.id = ++next_id_;
  blk.parent_id = parent_id;
  blk.tokens.assign(tokens, tokens + block_size_);
}

void BlockPool::unlink(BlockId b) {
  Block& blk = blocks_[b];
  FRUGAL_CHECK(blk.in_free);
  if (blk.prev != kNoBlock) blocks_[blk.prev].next = blk.next; else head_ = blk.next;
  if (blk.next != kNoBlock) blocks_[blk.next].prev = blk.prev; else tail_ = blk.prev;
  blk.prev = blk.next = kNoBlock;
  blk.in_free = false;
  --n_free_;
}

void BlockPool::push_tail(BlockId b) {
  Block& blk = blocks_[b];
  FRUGAL_CHECK(!blk.in_free);
  blk.prev = tail_;
  blk.next = kNoBlock;
  if (tail_ != kNoBlock) blocks_[tail_].next = b; else head_ = b;
  tail_ = b;
  blk.in_free = true;
  ++n_free_;
}

void BlockPool::evict(BlockId b) {
  Block& blk = blocks_[b];
  const auto it = cached_.find(blk.hash);
  FRUGAL_CHECK(it != cached_.end() && it->second == b);
  cached_.erase(it);
  blk.cached = false;
  blk.hash = 0;
  blk.id = blk.parent_id = 0;
  blk.tokens.clear();
}

void BlockPool::check_invariants() const {
  const int32_t n = n_blocks();
  std::vector<char> seen(n, 0);
  int32_t count = 0;
  BlockId prev = kNoBlock;
  for (BlockId b = head_; b != kNoBlock; b = blocks_[b].next) {
    FRUGAL_CHECK(b >= 0 && b < n);
    FRUGAL_CHECK_MSG(!seen[b], "free list has a duplicate (or a cycle)");
    seen[b] = 1;
    FRUGAL_CHECK(blocks_[b].in_free && blocks_[b].ref == 0);
    FRUGAL_CHECK(blocks_[b].prev == prev);
    prev = b;
    ++count;
  }
  FRUGAL_CHECK(tail_ == prev);
  FRUGAL_CHECK(count == n_free_);
  int64_t n_cached_blocks = 0;
  for (BlockId b = 0; b < n; ++b) {
    const Block& blk = blocks_[b];
    if (!seen[b]) FRUGAL_CHECK_MSG(!blk.in_free && blk.ref > 0, "block neither free nor referenced");
    if (!blk.cached) continue;
    ++n_cached_blocks;
    const auto it = cached_.find(blk.hash);
    FRUGAL_CHECK_MSG(it != cached_.end() && it->second == b, "block hash missing from the cache map");
    FRUGAL_CHECK(blk.id != 0 && blk.id <= next_id_ && blk.parent_id < blk.id);
    FRUGAL_CHECK(static_cast<int32_t>(blk.tokens.size()) == block_size_);
  }
  FRUGAL_CHECK_MSG(n_cached_blocks == n_cached(), "cache map has entries for uncached blocks");
}

}  // namespace frugal
