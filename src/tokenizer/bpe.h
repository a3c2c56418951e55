// BpeModel: byte-level BPE merging of one pre-tokenized piece (reference §4.3.4), llama.cpp-exact.
//
// Symbols are integer ids, not strings: vocabulary ids [0, n_vocab) plus "extra" ids for merge operands
// and results that are not vocabulary tokens. Each merge rule (a, b) maps to (rank, result id), so the
// merge loop never builds strings:
//
//   piece bytes -> one symbol per byte (the byte's GPT-2 stand-in character)
//   queue every adjacent pair with a rule, ordered by (rank, left position)
//   pop: skip if either side was consumed or changed since queued; merge; queue the two new neighbours
//   emit: a vocabulary symbol as its id; an extra symbol byte by byte (each byte of its text looked up as a
//         one-byte vocabulary string, skipped if absent), as llama.cpp does.
//
// Thread-safety: immutable after build(); encode() may run concurrently.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/flat_map.h"

namespace frugal {

class BpeModel {
 public:
  // `text_to_id` maps every vocabulary string (GPT-2 byte-encoded form) to its id; `merges` are
  // "left right" strings, rank = index. `n_vocab` bounds vocabulary ids. Malformed merges (no separating
  // space) are ignored, as llama.cpp does; a duplicate rule keeps its first rank.
  // `text_to_id` must outlive the model.
  static std::unique_ptr<BpeModel> build(const StringIdMap& text_to_id,
                                         int32_t n_vocab, const std::vector<std::string_view>& merges);

  // Reusable buffers for encode(); one per thread.
  struct Scratch {
    struct Sym {
      int32_t id, prev, next;  // id == -1: merged into its left neighbour
    };
    struct Pair {
      int32_t rank, left, right, left_id, right_id, result;
    };
    std::vector<Sym> syms;
    std::vector<Pair> heap;
    std::string word;
  };

  // Appends the ids for the raw bytes `piece` to `out`. With `ignore_merges`, a piece whose byte-encoded
  // form is a vocabulary token is emitted as that token directly (llama3 family).
  void encode(std::string_view piece, bool ignore_merges, Scratch& scratch, std::vector<int32_t>& out) const;

  size_t n_merges() const { return rules_.size(); }

 private:
  struct Rule {
    int32_t rank;
    int32_t result;
  };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  int32_t symbol_id(std::string_view text, bool add);  // kNone if absent and !add
  int32_t find_symbol(std::string_view text) const;

  const StringIdMap* text_to_id_ = nullptr;
  int32_t n_vocab_ = 0;
  std::deque<std::string> extra_text_;                        // text of id n_vocab_ + i
  StringIdMap extra_ids_;                                     // views into extra_text_
  U64Map<Rule> rules_;
  int32_t byte_symbol_[256] = {};  // symbol id of each byte's stand-in character
};

}  // namespace frugal
