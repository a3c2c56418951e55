// KvCacheManager: which blocks each sequence owns, and automatic prefix caching on top of BlockPool
// (vLLM's KVCacheManager). Pure bookkeeping: it never touches KV data.
//
//   seq 7, block_size 4, 10 tokens:  table [12, 3, 40]   position p lives in block table[p / 4],
//                                                        slot table[p / 4] * 4 + p % 4 of the storage.
//
// Prefix caching: when a sequence's computed tokens fill a block, the block is registered under
// hash(parent, tokens, salt). A new sequence whose prompt starts with the same full blocks (same salt)
// takes those blocks (ref++) and skips computing them. At least the last prompt token is always computed
// (its logits are needed), so the hit is capped at the full blocks before the last token.
// Thread-safety: none; owned by the engine thread.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "kv/block_pool.h"

namespace frugal {

using SeqId = int64_t;

struct PrefixHit {
  std::vector<BlockId> blocks;  // cached blocks for the first blocks.size() * block_size tokens
  int64_t n_tokens = 0;         // blocks.size() * block_size
  std::vector<CacheId> cache_ids;  // each block's registration when found (allocate checks it is current)
};

class KvCacheManager {
 public:
  KvCacheManager(int32_t n_blocks, int32_t block_size, bool prefix_caching);

  int32_t block_size() const;
  int32_t n_blocks() const;
  int32_t n_free_blocks() const;
  double usage() const;  // 1 - n_free / n_blocks
  const BlockPool& pool() const;

  // Longest cached prefix of tokens[0, n) in full blocks, capped so that at least token n-1 is computed.
  // Counts n (queries) and hit.n_tokens (hits) for the metrics. Takes no references (the blocks may be
  // evicted by a later allocate unless passed to allocate() first). Empty when prefix caching is off.
  PrefixHit find_prefix(const std::vector<int32_t>& tokens, uint64_t salt);

  // Makes `seq` own room for n_total tokens. On the sequence's first call, `hit` (may be null) gives its
  // cached prefix blocks, which it references first. Returns false and changes nothing when the free
  // list is too short (a hit's blocks that sit on the free list count as taken). The hit must be
  // current: no allocate() of another sequence may run between find_prefix and this call (checked).
  // Later calls ignore `hit` and only grow the table (never shrink it).
  bool allocate(SeqId seq, int64_t n_total, const PrefixHit* hit);

  // Registers the sequence's full blocks among its first n_computed tokens (tokens = its prompt and
  // output so far) in the prefix cache. Cheap when nothing new is full. Needs n_computed <= tokens.size()
  // and n_computed <= the allocated room. A block whose hash is already held by an equal block (same
  // tokens, same parent) is not registered but the chain continues through the holder; on a true hash
  // collision the sequence stops registering blocks.
  void cache_computed(SeqId seq, const std::vector<int32_t>& tokens, int64_t n_computed, uint64_t salt);

  // Releases all of the sequence's blocks, last block first (so a sequence's tail is evicted before its
  // shared head), and forgets the sequence. No-op for an unknown seq.
  void free(SeqId seq);

  // The sequence's blocks in position order (empty for an unknown seq).
  const std::vector<BlockId>& block_table(SeqId seq) const;
  bool has(SeqId seq) const;

  int64_t prefix_queries() const;  // tokens looked up
  int64_t prefix_hits() const;     // tokens found

  // Pool invariants plus: every block referenced by sequences has ref == number of sequences holding it.
  void check_invariants() const;

 private:
  struct SeqBlocks {
    std::vector<BlockId> table;
    std::vector<BlockHash> hashes;  // hashes of the first hashes.size() blocks (cached or already known)
    std::vector<CacheId> ids;       // per hashed block: the registration holding equal KV (its own or a twin)
    bool cache_stopped = false;     // a hash collision ended this sequence's chain
  };
  BlockPool pool_;
  bool prefix_caching_;
  std::unordered_map<SeqId, SeqBlocks> seqs_;
  int64_t queries_ = 0, hits_ = 0;
};

}  // namespace frugal
