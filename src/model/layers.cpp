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
                     const int32_t* pos, int64_t T, Workspace& ws, const float* a, float* x) {
  const int64_t qw = c.n_head * c.head_dim_k, kw = c.n_embd_k_gqa(), vw = c.n_embd_v_gqa();
  float* q = ws.q.data();
  float* k = ws.k.data();
  float* v = ws.v.data();
  be.matmul(w.wq, a, T, q);
  be.matmul(w.wk, a, T, k);
  be.matmul(w.wv, a, T, v);
  if (w.bq) be.add_bias(q, w.bq, T, qw);
  if (w.bk) be.add_bias(k, w.bk, T, kw);
  if (w.bv) be.add_bias(v, w.bv, T, vw);
  be.rope(q, qw, pos, T, c.n_head, c.head_dim_k, c.rope);
  be.rope(k, kw, pos, T, c.n_head_kv, c.head_dim_k, c.rope);
  kv.store(layer, pos, T, k, kw, v, vw);
  int64_t n_kv = 0;
  for (int64_t t = 0; t < T; ++t) n_kv = std::max<int64_t>(n_kv, pos[t] + 1);
  n_kv = std::max(n_kv, kv.n_past());
  AttentionShape s{c.n_head, c.n_head_kv, c.head_dim_k, c.head_dim_v, c.kq_scale};
  be.attention(q, qw, pos, T, kv.view(layer, n_kv), s, ws.o.data());
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

void output_head(Backend& be, const ModelConfig& c, const float* norm, const WeightView& output, int64_t T,
                 bool all, Workspace& ws, const float* x, float* logits) {
  const int64_t D = c.n_embd;
  const int64_t first = all ? 0 : T - 1, n = all ? T : 1;
  be.rms_norm(x + first * D, norm, n, D, c.rms_eps, ws.a.data());
  be.matmul(output, ws.a.data(), n, logits);
}

Status check_forward_args(const ModelConfig& c, const KvCache& kv, const int32_t* tokens, const int32_t* pos,
                          int64_t T) {
  if (T <= 0) return invalid_argument("forward: empty batch");
  for (int64_t t = 0; t < T; ++t) {
    if (tokens[t] < 0 || tokens[t] >= c.n_vocab)
      return invalid_argument("token id " + std::to_string(tokens[t]) + " at index " + std::to_string(t) +
                              " is outside the vocabulary (0.." + std::to_string(c.n_vocab - 1) + ")");
    if (pos[t] < 0 || pos[t] >= kv.n_ctx())
      return out_of_range("position " + std::to_string(pos[t]) + " is outside the context (size " +
                          std::to_string(kv.n_ctx()) + ")");
  }
  return Status::Ok();
}

}  // namespace frugal
