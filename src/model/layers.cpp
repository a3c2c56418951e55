#include "model/layers.h"

#include <algorithm>
#include <string>

namespace frugal {

void Workspace::reserve(const ModelConfig& c, int64_t T) {
  const auto grow = [](std::vector<float>& v, int64_t n) {
    if ((int64_t)v.size() < n) v.resize((size_t)n);
  };
  const int64_t qw = c.n_head * c.head_dim_k, ow = c.n_head * c.head_dim_v;
  grow(x, T * c.n_embd);
  grow(a, T * c.n_embd);
  grow(q, T * qw);
  grow(k, T * c.n_embd_k_gqa());
  grow(v, T * c.n_embd_v_gqa());
  grow(o, T * ow);
  grow(g, T * c.n_ff);
  grow(u, T * c.n_ff);
  grow(tmp, T * std::max(c.n_embd, ow));
}

static std::string blk(int64_t layer, const char* name) { return "blk." + std::to_string(layer) + "." + name; }

Status load_attention(WeightLoader& L, const ModelConfig& c, int64_t layer, bool biases_required,
                      AttentionWeights* w) {
  const int64_t D = c.n_embd, qw = c.n_head * c.head_dim_k;
  FRUGAL_ASSIGN_OR_RETURN(w->wq, L.matrix(blk(layer, "attn_q.weight"), D, qw));
  FRUGAL_ASSIGN_OR_RETURN(w->wk, L.matrix(blk(layer, "attn_k.weight"), D, c.n_embd_k_gqa()));
  FRUGAL_ASSIGN_OR_RETURN(w->wv, L.matrix(blk(layer, "attn_v.weight"), D, c.n_embd_v_gqa()));
  FRUGAL_ASSIGN_OR_RETURN(w->wo, L.matrix(blk(layer, "attn_output.weight"), c.n_head * c.head_dim_v, D));
  const bool opt = !biases_required;
  FRUGAL_ASSIGN_OR_RETURN(w->bq, L.vector(blk(layer, "attn_q.bias"), qw, opt));
  FRUGAL_ASSIGN_OR_RETURN(w->bk, L.vector(blk(layer, "attn_k.bias"), c.n_embd_k_gqa(), opt));
  FRUGAL_ASSIGN_OR_RETURN(w->bv, L.vector(blk(layer, "attn_v.bias"), c.n_embd_v_gqa(), opt));
  return Status::Ok();
}

Status load_ffn(WeightLoader& L, const ModelConfig& c, int64_t layer, int64_t n_ff, FfnWeights* w) {
  FRUGAL_ASSIGN_OR_RETURN(w->gate, L.matrix(blk(layer, "ffn_gate.weight"), c.n_embd, n_ff));
  FRUGAL_ASSIGN_OR_RETURN(w->up, L.matrix(blk(layer, "ffn_up.weight"), c.n_embd, n_ff));
  FRUGAL_ASSIGN_OR_RETURN(w->down, L.matrix(blk(layer, "ffn_down.weight"), n_ff, c.n_embd));
  return Status::Ok();
}

void attention_block(Backend& be, const ModelConfig& c, const AttentionWeights& w, KvCache& kv, int64_t layer,
                     const Batch& b, Workspace& ws, const float* a, float* x) {
  const int64_t T = b.T, qw = c.n_head * c.head_dim_k, kw = c.n_embd_k_gqa(), vw = c.n_embd_v_gqa();
  float* q = ws.q.data();
  float* k = ws.k.data();
  float* v = ws.v.data();
  be.matmul(w.wq, a, T, q);
  be.matmul(w.wk, a, T, k);
  be.matmul(w.wv, a, T, v);
  if (w.bq) be.add_bias(q, w.bq, T, qw);
  if (w.bk) be.add_bias(k, w.bk, T, kw);
  if (w.bv) be.add_bias(v, w.bv, T, vw);
  be.rope(q, qw, b.pos, T, c.n_head, c.head_dim_k, c.rope);
  // rope k and write k/v into the cache rows in one pass (bit-identical to rope + KvCache::store)
  be.rope_kv_write(k, kw, v, vw, b.pos, b.slots, T, 0, c.n_head_kv, c.head_dim_k, c.rope, kv.write_target(layer));
  const AttentionShape s{c.n_head, c.n_head_kv, c.head_dim_k, c.head_dim_v, c.kq_scale};
  ws.attn_seqs.resize((size_t)b.n_seqs);
  for (int64_t i = 0; i < b.n_seqs; ++i) {
    const BatchSeq& sq = b.seqs[i];
    ws.attn_seqs[(size_t)i] = {sq.t0, sq.n, kv.view(layer, sq.n_kv, sq.block_table, sq.block_shift)};
  }
  be.attention_multi(q, qw, b.pos, ws.attn_seqs.data(), b.n_seqs, s, ws.o.data());
  be.matmul(w.wo, ws.o.data(), T, ws.tmp.data());
  be.add(x, ws.tmp.data(), T * c.n_embd);
}

void ffn_block(Backend& be, const ModelConfig& c, const FfnWeights& w, int64_t T, Workspace& ws, const float* a,
               float* x) {
  const int64_t F = w.gate.N;
  be.matmul(w.gate, a, T, ws.g.data());
  be.matmul(w.up, a, T, ws.u.data());
  be.silu_mul(ws.g.data(), ws.u.data(), T * F);
  be.matmul(w.down, ws.g.data(), T, ws.tmp.data());
  be.add(x, ws.tmp.data(), T * c.n_embd);
}

void output_head(Backend& be, const ModelConfig& c, const float* norm, const WeightView& output, const Batch& b,
                 Workspace& ws, const float* x, float* logits) {
  const int64_t D = c.n_embd;
  float* rows = ws.a.data();  // a is free after the last layer; n_logits <= T rows fit
  for (int64_t i = 0; i < b.n_logits; ++i)
    std::copy(x + b.logit_rows[i] * D, x + (b.logit_rows[i] + 1) * D, rows + i * D);
  be.rms_norm(rows, norm, b.n_logits, D, c.rms_eps, rows);
  be.matmul(output, rows, b.n_logits, logits);
}

Status check_batch(const ModelConfig& c, const KvCache& kv, const Batch& b) {
  if (b.T <= 0) return invalid_argument("forward: empty batch");
  for (int64_t t = 0; t < b.T; ++t) {
    if (b.tokens[t] < 0 || b.tokens[t] >= c.n_vocab)
      return invalid_argument("token id " + std::to_string(b.tokens[t]) + " at index " + std::to_string(t) +
                              " is outside the vocabulary (0.." + std::to_string(c.n_vocab - 1) + ")");
    if (b.slots[t] < 0 || b.slots[t] >= kv.n_ctx())
      return out_of_range("KV slot " + std::to_string(b.slots[t]) + " is outside the cache (" +
                          std::to_string(kv.n_ctx()) + " rows)");
    if (b.pos[t] < 0) return invalid_argument("negative position " + std::to_string(b.pos[t]));
  }
  int64_t covered = 0;
  for (int64_t i = 0; i < b.n_seqs; ++i) {
    const BatchSeq& s = b.seqs[i];
    FRUGAL_CHECK_MSG(s.t0 == covered && s.n > 0, "batch sequences must tile the batch in order");
    for (int64_t t = s.t0; t < s.t0 + s.n; ++t) FRUGAL_CHECK(b.pos[t] < s.n_kv);
    covered += s.n;
  }
  FRUGAL_CHECK_MSG(covered == b.T, "batch sequences must cover every token");
  for (int64_t i = 0; i < b.n_logits; ++i) FRUGAL_CHECK(b.logit_rows[i] >= 0 && b.logit_rows[i] < b.T);
  return Status::Ok();
}

}  // namespace frugal
