// Batch: what one model forward runs (a flattened multi-sequence step of the engine).
#pragma once

#include <cstdint>

namespace frugal {

// One step's flattened batch: the tokens of several sequences, each sequence's tokens contiguous.
//
//   tokens  [a0 a1 a2 | b7 | c3 c4]      seqs {t0 0, n 3}, {t0 3, n 1}, {t0 4, n 2}
//   pos     [ 0  1  2 |  7 |  3  4]      position of each token in its own sequence
//   slots   [40 41 42 | 97 | 12 13]      KV storage row each token's K/V is written to
//
// Token t of sequence s attends to positions <= pos[t] of s, read through s.block_table (KvView::row).
struct BatchSeq {
  int64_t t0 = 0, n = 0;                 // token range [t0, t0 + n) of the batch
  const int32_t* block_table = nullptr;  // null: positions are storage rows (single contiguous sequence)
  int block_shift = 0;                   // log2(block size) when block_table is set
  int64_t n_kv = 0;                      // positions [0, n_kv) valid once this step's tokens are stored
};

struct Batch {
  const int32_t* tokens = nullptr;  // [T]
  const int32_t* pos = nullptr;     // [T]
  const int32_t* slots = nullptr;   // [T] KV storage rows
  int64_t T = 0;
  const BatchSeq* seqs = nullptr;
  int64_t n_seqs = 0;
  const int32_t* logit_rows = nullptr;  // [n_logits] batch rows whose logits are computed, in this order
  int64_t n_logits = 0;
};

}  // namespace frugal
