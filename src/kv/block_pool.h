// BlockPool: the KV cache's fixed set of blocks (each holds block_size token slots of every layer) with
// reference counts, an LRU free list and the prefix-cache map (vLLM's BlockPool).
//
//   free list: head (evicted first) ... tail (most recently freed)
//   allocate(n): pops n blocks from the head; a popped block that was cached loses its hash (evicted).
//   release(b): ref--; at 0 the block goes to the tail and KEEPS its cached contents, so a later request
//               with the same prefix can take it back (touch) until it is evicted by an allocate.
//   touch(b):   ref++; a block with ref 0 leaves the free list.
//
// Cached blocks are found by hash(parent hash, block tokens, salt) and verified against the stored
// tokens AND the parent's registration (CacheId), so a 64-bit hash collision can never return wrong KV:
// checking a block's own tokens is not enough, since a block's KV also depends on every token before it.
// Each cache() registration gets a fresh CacheId (never reused); a block registered under parent id p
// only matches a lookup whose previous block is registration p (or 0 for a sequence's first block).
// Thread-safety: none; owned by the engine thread.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace frugal {

using BlockId = int32_t;
using BlockHash = uint64_t;
using CacheId = uint64_t;  // one cache registration; 0 = none / "no parent" (first block)
inline constexpr BlockId kNoBlock = -1;

// Hash of one full block: the parent block's hash (0 for the first block), its tokens and a salt.
// Deterministic across runs and platforms: splitmix64-style chaining, h = mix(h + golden + x) over the
// words parent, salt, n_tokens, tokens[0..n) (mix = the splitmix64 finalizer).
BlockHash hash_block(BlockHash parent, const int32_t* tokens, int32_t n_tokens, uint64_t salt);

class BlockPool {
 public:
  // Blocks 0..n_blocks-1, all free, free list in id order.
  BlockPool(int32_t n_blocks, int32_t block_size);

  int32_t n_blocks() const;
  int32_t block_size() const;
  int32_t n_free() const;    // blocks with ref 0 (cached or not)
  int64_t n_cached() const;  // blocks registered in the prefix cache
  int32_t ref_count(BlockId b) const;
  std::optional<BlockHash> hash(BlockId b) const;  // set while the block is in the prefix cache
  CacheId cache_id(BlockId b) const;               // its current registration, 0 when not cached
  std::vector<BlockId> free_list() const;          // head to tail (for tests and invariants)

  // Pops n blocks from the head of the free list, each with ref 1. Checks n <= n_free().
  std::vector<BlockId> allocate(int32_t n);
  void touch(BlockId b);
  void release(BlockId b);

  // The cached block whose hash is h, whose tokens equal tokens[0, block_size) and whose parent
  // registration is parent_id, or kNoBlock.
  BlockId lookup(BlockHash h, const int32_t* tokens, CacheId parent_id = 0) const;
  // Registers block b (full, referenced, not cached yet) under h with its tokens and its parent's
  // registration. If h is already cached by another block, nothing changes (the first copy stays the
  // shared one; the caller can tell by hash(b) staying empty).
  void cache(BlockId b, BlockHash h, const int32_t* tokens, CacheId parent_id = 0);

  // Aborts (FRUGAL_CHECK) unless: every block is either on the free list with ref 0 or off it with
  // ref > 0; the free list has no duplicates; the map and the per-block hashes agree.
  void check_invariants() const;

 private:
  struct Block {
    int32_t ref = 0;
    BlockId prev = kNoBlock, next = kNoBlock;  // free-list links
    bool in_free = false;
    bool cached = false;
    BlockHash hash = 0;
    CacheId id = 0, parent_id = 0;  // this registration, its parent's (verification)
    std::vector<int32_t> tokens;    // cached tokens (verification)
  };
  void unlink(BlockId b);
  void push_tail(BlockId b);
  void evict(BlockId b);

  int32_t block_size_;
  std::vector<Block> blocks_;
  BlockId head_ = kNoBlock, tail_ = kNoBlock;
  int32_t n_free_ = 0;
  CacheId next_id_ = 0;
  std::unordered_map<BlockHash, BlockId> cached_;
};

}  // namespace frugal
