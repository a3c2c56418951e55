#include "kv/kv_cache_manager.h"

#include <algorithm>

#include "base/check.h"

namespace frugal {

KvCacheManager::KvCacheManager(int32_t n_blocks, int32_t block_size, bool prefix_caching)
    : pool_(n_blocks, block_size), prefix_caching_(prefix_caching) {}

int32_t KvCacheManager::block_size() const { return pool_.block_size(); }
int32_t KvCacheManager::n_blocks() const { return pool_.n_blocks(); }
int32_t KvCacheManager::n_free_blocks() const { return pool_.n_free(); }
const BlockPool& KvCacheManager::pool() const { return pool_; }
int64_t KvCacheManager::prefix_queries() const { return queries_; }
int64_t KvCacheManager::prefix_hits() const { return hits_; }
bool KvCacheManager::has(SeqId seq) const { return seqs_.count(seq) != 0; }

double KvCacheManager::usage() const {
  return 1.0 - static_cast<double>(pool_.n_free()) / static_cast<double>(pool_.n_blocks());
}

const std::vector<BlockId>& KvCacheManager::block_table(SeqId seq) const {
  static const std::vector<BlockId> kEmpty;
  const auto it = seqs_.find(seq);
  return it == seqs_.end() ? kEmpty : it->second.table;
}

PrefixHit KvCacheManager::find_prefix(const std::vector<int32_t>& tokens, uint64_t salt) {
  PrefixHit hit;
  if (!prefix_caching_ || tokens.empty()) return hit;
  const int32_t bs = block_size();
  const int64_t n_full = (static_cast<int64_t>(tokens.size()) - 1) / bs;
  BlockHash parent = 0;
  CacheId parent_id = 0;
  for (int64_t i = 0; i < n_full; ++i) {
    const int32_t* block_tokens = tokens.data() + i * bs;
    const BlockHash h = hash_block(parent, block_tokens, bs, salt);
    const BlockId b = pool_.lookup(h, block_tokens, parent_id);
    if (b == kNoBlock) break;
    parent = h;
    parent_id = pool_.cache_id(b);
    hit.blocks.push_back(b);
    hit.cache_ids.push_back(parent_id);
  }
  hit.n_tokens = static_cast<int64_t>(hit.blocks.size()) * bs;
  queries_ += static_cast<int64_t>(tokens.size());
  hits_ += hit.n_tokens;
  return hit;
}

bool KvCacheManager::allocate(SeqId seq, int64_t n_total, const PrefixHit* hit) {
  FRUGAL_CHECK(n_total >= 0);
  const int32_t bs = block_size();
  const int64_t blocks_needed = (n_total + bs - 1) / bs;
  auto it = seqs_.find(seq);
  if (it != seqs_.end()) {  // later call: grow only
    std::vector<BlockId>& table = it->second.table;
    const int64_t extra = blocks_needed - static_cast<int64_t>(table.size());
    if (extra <= 0) return true;
    if (extra > pool_.n_free()) return false;
    const std::vector<BlockId> fresh = pool_.allocate(static_cast<int32_t>(extra));
    table.insert(table.end(), fresh.begin(), fresh.end());
    return true;
  }

  const size_t n_hit = hit ? hit->blocks.size() : 0;
  if (hit) {
    FRUGAL_CHECK(hit->n_tokens == static_cast<int64_t>(n_hit) * bs);
    FRUGAL_CHECK(hit->cache_ids.empty() || hit->cache_ids.size() == n_hit);
  }
  FRUGAL_CHECK_MSG(static_cast<int64_t>(n_hit) <= blocks_needed, "prefix hit longer than the sequence");
  SeqBlocks sb;
  int64_t hit_on_free_list = 0;
  for (size_t i = 0; i < n_hit; ++i) {
    const BlockId b = hit->blocks[i];
    const CacheId id = pool_.cache_id(b);
    FRUGAL_CHECK_MSG(id != 0 && (hit->cache_ids.empty() || hit->cache_ids[i] == id),
                     "stale prefix hit: its block was evicted after find_prefix");
    if (pool_.ref_count(b) == 0) ++hit_on_free_list;
    sb.hashes.push_back(*pool_.hash(b));
    sb.ids.push_back(id);
  }
  const int64_t fresh_needed = blocks_needed - static_cast<int64_t>(n_hit);
  if (fresh_needed > pool_.n_free() - hit_on_free_list) return false;

  sb.table.reserve(static_cast<size_t>(blocks_needed));
  for (size_t i = 0; i < n_hit; ++i) {
    pool_.touch(hit->blocks[i]);
    sb.table.push_back(hit->blocks[i]);
  }
  const std::vector<BlockId> fresh = pool_.allocate(static_cast<int32_t>(fresh_needed));
  sb.table.insert(sb.table.end(), fresh.begin(), fresh.end());
  seqs_.emplace(seq, std::move(sb));
  return true;
}

void KvCacheManager::cache_computed(SeqId seq, const std::vector<int32_t>& tokens, int64_t n_computed,
                                    uint64_t salt) {
  if (!prefix_caching_) return;
  const auto it = seqs_.find(seq);
  FRUGAL_CHECK_MSG(it != seqs_.end(), "cache_computed for an unknown sequence");
  SeqBlocks& sb = it->second;
  const int32_t bs = block_size();
  FRUGAL_CHECK(n_computed >= 0 && n_computed <= static_cast<int64_t>(tokens.size()));
  FRUGAL_CHECK_MSG(n_computed <= static_cast<int64_t>(sb.table.size()) * bs, "computed beyond allocated room");
  const size_t n_full = static_cast<size_t>(n_computed / bs);
  while (!sb.cache_stopped && sb.hashes.size() < n_full) {
    const size_t i = sb.hashes.size();
    const BlockHash parent = i == 0 ? 0 : sb.hashes[i - 1];
    const CacheId parent_id = i == 0 ? 0 : sb.ids[i - 1];
    const int32_t* block_tokens = tokens.data() + i * bs;
    const BlockHash h = hash_block(parent, block_tokens, bs, salt);
    const BlockId b = sb.table[i];
    pool_.cache(b, h, block_tokens, parent_id);
    CacheId id = pool_.cache_id(b);
    if (id == 0) {  // h is held by another block: an equal twin (continue through it) or a collision
      const BlockId twin = pool_.lookup(h, block_tokens, parent_id);
      if (twin == kNoBlock) {
        sb.cache_stopped = true;
        break;
      }
      id = pool_.cache_id(twin);
    }
    sb.hashes.push_back(h);
    sb.ids.push_back(id);
  }
}

void KvCacheManager::free(SeqId seq) {
  const auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  const std::vector<BlockId>& table = it->second.table;
  for (auto b = table.rbegin(); b != table.rend(); ++b) pool_.release(*b);
  seqs_.erase(it);
}

void KvCacheManager::check_invariants() const {
  pool_.check_invariants();
  std::vector<int32_t> holders(static_cast<size_t>(n_blocks()), 0);
  for (const auto& [seq, sb] : seqs_) {
    FRUGAL_CHECK(sb.hashes.size() == sb.ids.size() && sb.hashes.size() <= sb.table.size());
    for (size_t i = 0; i < sb.table.size(); ++i) {
      const BlockId b = sb.table[i];
      FRUGAL_CHECK(b >= 0 && b < n_blocks());
      ++holders[static_cast<size_t>(b)];
      const std::optional<BlockHash> h = pool_.hash(b);
      // A held block that is cached was registered (or found) by this sequence at this position.
      if (h) FRUGAL_CHECK_MSG(i < sb.hashes.size() && *h == sb.hashes[i], "held cached block off its chain");
    }
  }
  for (BlockId b = 0; b < n_blocks(); ++b) {
    FRUGAL_CHECK_MSG(pool_.ref_count(b) == holders[static_cast<size_t>(b)], "ref count != holders");
  }
}

}  // namespace frugal
