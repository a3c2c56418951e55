#include "model/mla.h"

#include <algorithm>
#include <string>

#include "backend/quant.h"
#include "base/check.h"

namespace frugal {

namespace {

std::string blk(int64_t layer, const char* name) { return "blk." + std::to_string(layer) + "." + name; }

void grow(std::vector<float>& v, int64_t n) {
  if ((int64_t)v.size() < n) v.resize((size_t)n);
}

// dst[t, 0:n] = src[t * src_stride + 0 : n]
void gather(const float* src, int64_t src_stride, int64_t T, int64_t n, float* dst) {
  for (int64_t t = 0; t < T; ++t) std::copy(src + t * src_stride, src + t * src_stride + n, dst + t * n);
}

// dst[t * dst_stride + 0 : n] = src[t, 0:n]
void scatter(const float* src, int64_t T, int64_t n, float* dst, int64_t dst_stride) {
  for (int64_t t = 0; t < T; ++t) std::copy(src + t * n, src + (t + 1) * n, dst + t * dst_stride);
}

// W_kb,h for every head from attn_kv_b {L, H*(nope+v)}: kv_b row h*(nope+v)+j is k_nope_h[j] = row · c,
// so W_kb,h (L rows of nope, q'[i] = sum_j W_kb,h[i][j] q_nope[j]) is the transpose of those nope rows.
void derive_k_b(const WeightView& kv_b, const MlaConfig& m, int64_t H, std::vector<float>* out) {
  const int64_t L = m.kv_lora_rank, nope = m.qk_nope, per = m.qk_nope + m.v_head;
  out->assign((size_t)(H * L * nope), 0.f);
  std::vector<float> row((size_t)L);
  const QuantTraits* tr = quant_traits(kv_b.type, Isa::kScalar);
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t j = 0; j < nope; ++j) {
      tr->to_float(kv_b.row(h * per + j), row.data(), L);
      for (int64_t i = 0; i < L; ++i) (*out)[(size_t)((h * L + i) * nope + j)] = row[(size_t)i];
    }
  }
}

}  // namespace

Status load_mla(WeightLoader& L, const GgufFile& f, const ModelConfig& c, int64_t layer, MlaWeights* w) {
  const MlaConfig& m = c.mla;
  const int64_t D = c.n_embd, H = c.n_head, hk = m.qk_nope + m.qk_rope, Lr = m.kv_lora_rank, vh = m.v_head;
  if (m.q_lora_rank > 0) {
    FRUGAL_ASSIGN_OR_RETURN(w->q_a, L.matrix(blk(layer, "attn_q_a.weight"), D, m.q_lora_rank));
    FRUGAL_ASSIGN_OR_RETURN(w->q_a_norm, L.vector(blk(layer, "attn_q_a_norm.weight"), m.q_lora_rank));
    FRUGAL_ASSIGN_OR_RETURN(w->q_b, L.matrix(blk(layer, "attn_q_b.weight"), m.q_lora_rank, H * hk));
  } else {
    FRUGAL_ASSIGN_OR_RETURN(w->q, L.matrix(blk(layer, "attn_q.weight"), D, H * hk));
  }
  FRUGAL_ASSIGN_OR_RETURN(w->kv_a_mqa, L.matrix(blk(layer, "attn_kv_a_mqa.weight"), D, Lr + m.qk_rope));
  FRUGAL_ASSIGN_OR_RETURN(w->kv_a_norm, L.vector(blk(layer, "attn_kv_a_norm.weight"), Lr));
  FRUGAL_ASSIGN_OR_RETURN(w->wo, L.matrix(blk(layer, "attn_output.weight"), H * vh, D));
  w->k_b.resize((size_t)H);
  w->v_b.resize((size_t)H);
  w->split_form = f.tensor(blk(layer, "attn_k_b.weight")) != nullptr;
  if (w->split_form) {
    FRUGAL_ASSIGN_OR_RETURN(WeightView kb, L.stacked(blk(layer, "attn_k_b.weight"), m.qk_nope, Lr, H));
    FRUGAL_ASSIGN_OR_RETURN(WeightView vb, L.stacked(blk(layer, "attn_v_b.weight"), Lr, vh, H));
    for (int64_t h = 0; h < H; ++h) {
      w->k_b[(size_t)h] = weight_rows(kb, h * Lr, Lr);
      w->v_b[(size_t)h] = weight_rows(vb, h * vh, vh);
    }
    return Status::Ok();
  }
  FRUGAL_ASSIGN_OR_RETURN(WeightView kvb, L.matrix(blk(layer, "attn_kv_b.weight"), Lr, H * (m.qk_nope + vh)));
  w->kv_b = kvb;
  derive_k_b(kvb, m, H, &w->k_b_owned);
  for (int64_t h = 0; h < H; ++h) {
    WeightView& kb = w->k_b[(size_t)h];
    kb.type = DType::F32;
    kb.K = m.qk_nope;
    kb.N = Lr;
    kb.row_bytes = (size_t)m.qk_nope * sizeof(float);
    kb.data = reinterpret_cast<const uint8_t*>(w->k_b_owned.data() + h * Lr * m.qk_nope);
    w->v_b[(size_t)h] = weight_rows(kvb, h * (m.qk_nope + vh) + m.qk_nope, vh);
  }
  return Status::Ok();
}

void mla_qkv(Backend& be, const ModelConfig& c, const MlaWeights& w, const int32_t* pos, int64_t T, const float* a,
             MlaWorkspace& ws, bool rope_k) {
  const MlaConfig& m = c.mla;
  const int64_t H = c.n_head, hk = m.qk_nope + m.qk_rope, Lr = m.kv_lora_rank, kvw = Lr + m.qk_rope;
  grow(ws.q, T * H * hk);
  grow(ws.kv, T * kvw);
  grow(ws.c, T * std::max(Lr, m.q_lora_rank));
  if (m.q_lora_rank > 0) {
    grow(ws.cq, T * m.q_lora_rank);
    be.matmul(w.q_a, a, T, ws.cq.data());
    be.rms_norm(ws.cq.data(), w.q_a_norm, T, m.q_lora_rank, c.rms_eps, ws.cq.data());
    be.matmul(w.q_b, ws.cq.data(), T, ws.q.data());
  } else {
    be.matmul(w.q, a, T, ws.q.data());
  }
  be.matmul(w.kv_a_mqa, a, T, ws.kv.data());
  // c_kv is normalized before it is cached (rms_norm wants contiguous rows: go through ws.c)
  gather(ws.kv.data(), kvw, T, Lr, ws.c.data());
  be.rms_norm(ws.c.data(), w.kv_a_norm, T, Lr, c.rms_eps, ws.c.data());
  scatter(ws.c.data(), T, Lr, ws.kv.data(), kvw);
  // rope: the last qk_rope values of every q head, and the shared k_pe (rope.n_dims == qk_rope)
  be.rope(ws.q.data() + m.qk_nope, H * hk, pos, T, H, hk, c.rope);
  if (rope_k) be.rope(ws.kv.data() + Lr, kvw, pos, T, 1, m.qk_rope, c.rope);
}

void mla_attention(Backend& be, const ModelConfig& c, const MlaWeights& w, KvCache& kv, int64_t layer, const Batch& b,
                   MlaWorkspace& ws, const float* a, float* x) {
  const MlaConfig& m = c.mla;
  const int64_t T = b.T, H = c.n_head, hk = m.qk_nope + m.qk_rope, Lr = m.kv_lora_rank, kvw = Lr + m.qk_rope;
  const int64_t vh = m.v_head;
  mla_qkv(be, c, w, b.pos, T, a, ws, /*rope_k=*/false);
  // attn_kv_b (older files) multiplies the normalized latent c_kv in the textbook form; here its rows are
  // used per head instead (W_kb derived, W_vb on ol_h), so tell an observing backend what the input is.
  if (!w.split_form) be.note_input(w.kv_b, ws.c.data(), T);
  // rope k_pe and write [c_kv | k_pe] into the latent cache rows in one pass (= rope + KvCache::store)
  be.rope_kv_write(ws.kv.data(), kvw, nullptr, 0, b.pos, b.slots, T, Lr, 1, m.qk_rope, c.rope,
                   kv.write_target(layer));

  // q'_h = [W_kb,h q_nope_h | q_pe_h]   [T, H, L + R]; all heads' W_kb in one matmul_multi
  grow(ws.qa, T * H * kvw);
  grow(ws.gather, H * T * std::max(m.qk_nope, Lr));
  grow(ws.part, H * T * std::max(Lr, vh));
  ws.jobs.clear();
  for (int64_t h = 0; h < H; ++h) {
    gather(ws.q.data() + h * hk, H * hk, T, m.qk_nope, ws.gather.data() + h * T * m.qk_nope);
    ws.jobs.push_back({w.k_b[(size_t)h], ws.gather.data() + h * T * m.qk_nope, T, ws.part.data() + h * T * Lr});
  }
  be.matmul_multi(ws.jobs.data(), H);
  for (int64_t h = 0; h < H; ++h) {
    scatter(ws.part.data() + h * T * Lr, T, Lr, ws.qa.data() + h * kvw, H * kvw);
    for (int64_t t = 0; t < T; ++t) {
      const float* qpe = ws.q.data() + t * H * hk + h * hk + m.qk_nope;
      std::copy(qpe, qpe + m.qk_rope, ws.qa.data() + t * H * kvw + h * kvw + Lr);
    }
  }

  // MQA over the latent rows: one KV head of width L + R, V = the first L columns of the same rows
  grow(ws.ol, T * H * Lr);
  const AttentionShape s{H, 1, kvw, Lr, c.kq_scale};
  ws.attn_seqs.resize((size_t)b.n_seqs);
  for (int64_t i = 0; i < b.n_seqs; ++i) {
    const BatchSeq& sq = b.seqs[i];
    KvView view = kv.view(layer, sq.n_kv, sq.block_table, sq.block_shift);
    FRUGAL_CHECK(view.v == view.k);  // the cache is in MLA latent mode
    ws.attn_seqs[(size_t)i] = {sq.t0, sq.n, view};
  }
  be.attention_multi(ws.qa.data(), H * kvw, b.pos, ws.attn_seqs.data(), b.n_seqs, s, ws.ol.data());

  // o_h = W_vb,h ol_h ; x += attn_output · concat_h(o_h)
  grow(ws.o, T * H * vh);
  grow(ws.out, T * c.n_embd);
  ws.jobs.clear();
  for (int64_t h = 0; h < H; ++h) {
    gather(ws.ol.data() + h * Lr, H * Lr, T, Lr, ws.gather.data() + h * T * Lr);
    ws.jobs.push_back({w.v_b[(size_t)h], ws.gather.data() + h * T * Lr, T, ws.part.data() + h * T * vh});
  }
  be.matmul_multi(ws.jobs.data(), H);
  for (int64_t h = 0; h < H; ++h) scatter(ws.part.data() + h * T * vh, T, vh, ws.o.data() + h * vh, H * vh);
  be.matmul(w.wo, ws.o.data(), T, ws.out.data());
  be.add(x, ws.out.data(), T * c.n_embd);
}

}  // namespace frugal
