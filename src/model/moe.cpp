#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <sys/mman.h>
#include <unistd.h>

#include "base/check.h"

namespace frugal {

namespace {

std::string blk(int64_t layer, const char* name) { return "blk." + std::to_string(layer) + "." + name; }

template <class T>
void grow(std::vector<T>& v, int64_t n) {
  if ((int64_t)v.size() < n) v.resize((size_t)n);
}

// Index order "a before b" for top-k: larger score first, ties broken by the lower index.
inline bool ranks_before(const float* s, int32_t a, int32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); }

// Writes the k best indices of s[0, n) (ranks_before order) to out[k]. k <= n; O(n k), fine for n <= 256.
void top_k(const float* s, int64_t n, int64_t k, int32_t* out) {
  int64_t have = 0;
  for (int32_t i = 0; i < (int32_t)n; ++i) {
    if (have == k && !ranks_before(s, i, out[k - 1])) continue;
    int64_t j = have < k ? have++ : k - 1;
    while (j > 0 && ranks_before(s, i, out[j - 1])) {
      out[j] = out[j - 1];
      --j;
    }
    out[j] = i;
  }
}

// Asks the kernel to start reading the (memory-mapped) pages of [p, p + n) now, asynchronously.
void advise_willneed(const uint8_t* p, size_t n) {
  static const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + n;
  madvise(reinterpret_cast<void*>(begin), end - begin, MADV_WILLNEED);  // advisory: errors are harmless
}

// Prefetch of the experts a forward is about to run for the first time (their pages may still be on disk:
// a cold start of a model larger than the page cache); later runs find them resident, so no syscalls.
void prefetch_new_experts(const MoeLayerWeights& w, const MoeStats& stats, int64_t layer, const int32_t* offset,
                          int64_t E, int64_t F, int64_t D) {
  for (int64_t e = 0; e < E; ++e) {
    if (offset[e + 1] == offset[e] || stats.runs(layer, e) > 0) continue;
    advise_willneed(w.gate_exps.row(e * F), (size_t)F * w.gate_exps.row_bytes);
    advise_willneed(w.up_exps.row(e * F), (size_t)F * w.up_exps.row_bytes);
    advise_willneed(w.down_exps.row(e * D), (size_t)D * w.down_exps.row_bytes);
  }
}

}  // namespace

Status load_moe_layer(WeightLoader& L, const ModelConfig& c, int64_t layer, MoeLayerWeights* w) {
  const MoeConfig& m = c.moe;
  const int64_t D = c.n_embd, E = m.n_expert, F = m.n_ff_exp;
  FRUGAL_ASSIGN_OR_RETURN(w->gate_inp, L.matrix(blk(layer, "ffn_gate_inp.weight"), D, E));
  FRUGAL_ASSIGN_OR_RETURN(w->exp_probs_b, L.vector(blk(layer, "exp_probs_b.bias"), E, /*optional=*/true));
  FRUGAL_ASSIGN_OR_RETURN(w->gate_exps, L.stacked(blk(layer, "ffn_gate_exps.weight"), D, F, E));
  FRUGAL_ASSIGN_OR_RETURN(w->up_exps, L.stacked(blk(layer, "ffn_up_exps.weight"), D, F, E));
  FRUGAL_ASSIGN_OR_RETURN(w->down_exps, L.stacked(blk(layer, "ffn_down_exps.weight"), F, D, E));
  if (m.n_expert_shared > 0) {
    const int64_t Fs = F * m.n_expert_shared;
    FRUGAL_ASSIGN_OR_RETURN(w->shared.gate, L.matrix(blk(layer, "ffn_gate_shexp.weight"), D, Fs));
    FRUGAL_ASSIGN_OR_RETURN(w->shared.up, L.matrix(blk(layer, "ffn_up_shexp.weight"), D, Fs));
    FRUGAL_ASSIGN_OR_RETURN(w->shared.down, L.matrix(blk(layer, "ffn_down_shexp.weight"), Fs, D));
  }
  return Status::Ok();
}

void route_token(const MoeConfig& m, const float* logits, const float* bias, int32_t* ids, float* weights,
                 float* scratch) {
  const int64_t E = m.n_expert, K = m.n_expert_used;
  float* p = scratch;        // [E] gate probabilities
  float* s = scratch + E;    // [E] selection scores
  float* gs = scratch + 2 * E;  // [n_group] group scores
  if (m.gate_sigmoid) {
    for (int64_t e = 0; e < E; ++e) p[e] = 1.f / (1.f + std::exp(-logits[e]));
  } else {  // as ggml_soft_max: max-shifted exp, sum in double, scale by the f32 reciprocal
    float mx = -INFINITY;
    for (int64_t e = 0; e < E; ++e) mx = std::max(mx, logits[e]);
    double sum = 0.0;
    for (int64_t e = 0; e < E; ++e) sum += (p[e] = std::exp(logits[e] - mx));
    const float inv = (float)(1.0 / sum);
    for (int64_t e = 0; e < E; ++e) p[e] *= inv;
  }
  for (int64_t e = 0; e < E; ++e) s[e] = bias ? p[e] + bias[e] : p[e];
  if (m.n_group > 1) {
    const int64_t per = E / m.n_group;
    int32_t best[2];
    for (int64_t g = 0; g < m.n_group; ++g) {
      const int64_t n2 = std::min<int64_t>(2, per);
      top_k(s + g * per, per, n2, best);
      gs[g] = 0.f;
      for (int64_t j = 0; j < n2; ++j) gs[g] += s[g * per + best[j]];
    }
    // a group stays when fewer than n_group_used groups rank before it (same tie rule as top_k)
    for (int64_t g = 0; g < m.n_group; ++g) {
      int64_t better = 0;  // groups ranked before g
      for (int64_t h = 0; h < m.n_group; ++h)
        if (h != g && (gs[h] > gs[g] || (gs[h] == gs[g] && h < g))) ++better;
      if (better >= m.n_group_used)
        for (int64_t e = g * per; e < (g + 1) * per; ++e) s[e] = -INFINITY;
    }
  }
  top_k(s, E, K, ids);
  float sum = 0.f;
  for (int64_t j = 0; j < K; ++j) sum += (weights[j] = p[ids[j]]);
  if (m.norm_weights) {
    const float d = std::max(sum, 6.103515625e-5f);
    for (int64_t j = 0; j < K; ++j) weights[j] /= d;
  }
  if (m.weights_scale != 0.f && m.weights_scale != 1.f)
    for (int64_t j = 0; j < K; ++j) weights[j] *= m.weights_scale;
}

// ---- MoeStats ----

MoeStats::MoeStats(int64_t n_layer, int64_t n_expert)
    : n_layer_(n_layer),
      n_expert_(n_expert),
      tokens_(new std::atomic<uint64_t>[(size_t)(n_layer * n_expert)]),
      runs_(new std::atomic<uint64_t>[(size_t)(n_layer * n_expert)]),
      expert_bytes_((size_t)n_layer, 0),
      expert_params_((size_t)n_layer, 0) {
  reset();
}

void MoeStats::reset() {
  for (int64_t i = 0; i < n_layer_ * n_expert_; ++i) {
    tokens_[(size_t)i].store(0, std::memory_order_relaxed);
    runs_[(size_t)i].store(0, std::memory_order_relaxed);
  }
  n_tokens_.store(0, std::memory_order_relaxed);
}

uint64_t MoeStats::tokens(int64_t layer, int64_t expert) const {
  FRUGAL_CHECK(layer >= 0 && layer < n_layer_ && expert >= 0 && expert < n_expert_);
  return tokens_[(size_t)(layer * n_expert_ + expert)].load(std::memory_order_relaxed);
}

uint64_t MoeStats::runs(int64_t layer, int64_t expert) const {
  FRUGAL_CHECK(layer >= 0 && layer < n_layer_ && expert >= 0 && expert < n_expert_);
  return runs_[(size_t)(layer * n_expert_ + expert)].load(std::memory_order_relaxed);
}

void MoeStats::set_expert_size(int64_t layer, uint64_t bytes, uint64_t params) {
  expert_bytes_[(size_t)layer] = bytes;
  expert_params_[(size_t)layer] = params;
}

void MoeStats::record(int64_t layer, int64_t expert, uint64_t n) {
  const size_t i = (size_t)(layer * n_expert_ + expert);
  tokens_[i].fetch_add(n, std::memory_order_relaxed);
  runs_[i].fetch_add(1, std::memory_order_relaxed);
}

void set_moe_layer_size(MoeStats& stats, const ModelConfig& c, int64_t layer, const MoeLayerWeights& w) {
  const int64_t D = c.n_embd, F = c.moe.n_ff_exp;
  const uint64_t bytes = (uint64_t)(F * (w.gate_exps.row_bytes + w.up_exps.row_bytes) + D * w.down_exps.row_bytes);
  stats.set_expert_size(layer, bytes, (uint64_t)(3 * D * F));
}

uint64_t moe_unread_bytes(const MoeStats& stats, const MoeConfig& m) {
  uint64_t r = 0;
  for (int64_t l = 0; l < stats.n_layer(); ++l) r += (uint64_t)(m.n_expert - m.n_expert_used) * stats.expert_bytes(l);
  return r;
}

uint64_t moe_inactive_params(const MoeStats& stats, const MoeConfig& m) {
  uint64_t r = 0;
  for (int64_t l = 0; l < stats.n_layer(); ++l)
    r += (uint64_t)(m.n_expert - m.n_expert_used) * stats.expert_params(l);
  return r;
}

uint64_t active_params(const Model& model) {
  const MoeStats* s = model.moe_stats();
  return model.n_params() - (s ? moe_inactive_params(*s, model.config().moe) : 0);
}

// ---- moe_ffn ----

void moe_ffn(Backend& be, const ModelConfig& c, const MoeLayerWeights& w, int64_t layer, int64_t T, const float* f,
             float* x, MoeWorkspace& ws, MoeStats* stats) {
  const MoeConfig& m = c.moe;
  const int64_t D = c.n_embd, E = m.n_expert, K = m.n_expert_used, F = m.n_ff_exp;
  const int64_t TK = T * K;
  grow(ws.logits, T * E);
  grow(ws.weights, TK);
  grow(ws.ids, TK);
  grow(ws.route_scratch, 2 * E + m.n_group);
  grow(ws.rows, TK);
  grow(ws.row_w, TK);
  grow(ws.count, E);
  grow(ws.offset, E + 1);
  grow(ws.xs, TK * D);
  grow(ws.g, TK * F);
  grow(ws.u, TK * F);
  grow(ws.y, TK * D);
  grow(ws.acc, T * D);

  // 1. route
  be.matmul(w.gate_inp, f, T, ws.logits.data());
  for (int64_t t = 0; t < T; ++t)
    route_token(m, ws.logits.data() + t * E, w.exp_probs_b, ws.ids.data() + t * K, ws.weights.data() + t * K,
                ws.route_scratch.data());

  // 2. group (token, weight) pairs by expert: counting sort, tokens ascending within an expert
  std::fill(ws.count.begin(), ws.count.begin() + E, 0);
  for (int64_t i = 0; i < TK; ++i) ++ws.count[(size_t)ws.ids[(size_t)i]];
  ws.offset[0] = 0;
  for (int64_t e = 0; e < E; ++e) ws.offset[(size_t)e + 1] = ws.offset[(size_t)e] + ws.count[(size_t)e];
  std::copy(ws.offset.begin(), ws.offset.begin() + E, ws.count.begin());  // count = insertion cursor now
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < K; ++j) {
      const int32_t e = ws.ids[(size_t)(t * K + j)];
      const int32_t at = ws.count[(size_t)e]++;
      ws.rows[(size_t)at] = (int32_t)t;
      ws.row_w[(size_t)at] = ws.weights[(size_t)(t * K + j)];
      if (ws.offset[(size_t)e + 1] - ws.offset[(size_t)e] > 1)  // one token: its expert reads f's row directly
        std::copy(f + t * D, f + (t + 1) * D, ws.xs.data() + (size_t)at * D);
    }
  }

  if (stats && layer == m.n_layer_dense_lead) stats->add_tokens((uint64_t)T);
  if (stats) prefetch_new_experts(w, *stats, layer, ws.offset.data(), E, F, D);

  // 3. run each selected expert once over its tokens (and the shared experts over all tokens): gate and
  //    up of all of them in one matmul_multi, then the down projections in another
  const bool shared = w.shared.gate.data != nullptr;
  const int64_t Fs = shared ? w.shared.gate.N : 0;
  if (shared) {
    grow(ws.sg, T * Fs);
    grow(ws.su, T * Fs);
    grow(ws.sy, T * D);
  }
  ws.jobs.clear();
  for (int64_t e = 0; e < E; ++e) {
    const int64_t o = ws.offset[(size_t)e], n = ws.offset[(size_t)e + 1] - o;
    if (n == 0) continue;
    if (stats) stats->record(layer, e, (uint64_t)n);
    // an expert with one token reads that token's row of f: every expert of a decode step then has the
    // same x, which matmul_multi converts once
    const float* xe = n == 1 ? f + (int64_t)ws.rows[(size_t)o] * D : ws.xs.data() + o * D;
    ws.jobs.push_back({weight_rows(w.gate_exps, e * F, F), xe, n, ws.g.data() + o * F});
    ws.jobs.push_back({weight_rows(w.up_exps, e * F, F), xe, n, ws.u.data() + o * F});
  }
  if (shared) {
    ws.jobs.push_back({w.shared.gate, f, T, ws.sg.data()});
    ws.jobs.push_back({w.shared.up, f, T, ws.su.data()});
  }
  be.matmul_multi(ws.jobs.data(), (int64_t)ws.jobs.size());
  be.silu_mul(ws.g.data(), ws.u.data(), TK * F);  // expert segments are contiguous
  if (shared) be.silu_mul(ws.sg.data(), ws.su.data(), T * Fs);
  ws.jobs.clear();
  for (int64_t e = 0; e < E; ++e) {
    const int64_t o = ws.offset[(size_t)e], n = ws.offset[(size_t)e + 1] - o;
    if (n > 0) ws.jobs.push_back({weight_rows(w.down_exps, e * D, D), ws.g.data() + o * F, n, ws.y.data() + o * D});
  }
  if (shared) ws.jobs.push_back({w.shared.down, ws.sg.data(), T, ws.sy.data()});
  be.matmul_multi(ws.jobs.data(), (int64_t)ws.jobs.size());

  // 4. weighted sum per token, experts in ascending id (the same order whatever else is in the batch)
  float* acc = ws.acc.data();
  std::fill(acc, acc + T * D, 0.f);
  for (int64_t i = 0; i < TK; ++i) {
    float* dst = acc + (int64_t)ws.rows[(size_t)i] * D;
    const float* y = ws.y.data() + i * D;
    const float wt = ws.row_w[(size_t)i];
    for (int64_t d = 0; d < D; ++d) dst[d] += wt * y[d];
  }

  // 5. shared experts, unweighted
  if (shared) be.add(acc, ws.sy.data(), T * D);
  be.add(x, acc, T * D);
}

}  // namespace frugal
