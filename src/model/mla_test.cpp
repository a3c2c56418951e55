// Absorbed MLA (the model's path: latent cache, W_kb folded into the query, W_vb applied after attention)
// against the naive MHA formulation, implemented once here as the oracle: per head k_nope_h = W_UK,h c_kv
// and v_h = W_UV,h c_kv decompressed from the latent (W_UK/W_UV read from attn_k_b/attn_v_b or attn_kv_b,
// dequantized), ordinary causal attention of [q_nope | q_pe] over [k_nope | k_pe] in double precision.
// Both share the q/kv projections (mla_qkv) and the FFN code; the golden tests check those against llama.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "backend/quant.h"
#include "base/thread_pool.h"
#include "model/deepseek_test_models.h"
#include "model/layers.h"
#include "model/mla.h"
#include "model/model.h"
#include "model/moe.h"
#include "model/synth.h"
#include "support/temp_path.h"

namespace frugal {
namespace {

std::vector<float> dequantize(const GgufTensorInfo& t) {
  std::vector<float> out((size_t)t.n_elements());
  quant_traits(t.type, Isa::kScalar)->to_float(t.data, out.data(), t.n_elements());
  return out;
}

struct NaiveLayer {
  const float* attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  MlaWeights mla;                    // projections shared with the model (mla_qkv), wo
  std::vector<float> w_uk, w_uv;     // [H][nope][L], [H][v][L]
  FfnWeights ffn;
  MoeLayerWeights moe;
};

class NaiveDeepseek2 {
 public:
  Status load(const Model& model) {
    const GgufFile& f = model.gguf();
    c_ = model.config();
    WeightLoader L(f);
    FRUGAL_ASSIGN_OR_RETURN(token_embd_, L.matrix("token_embd.weight", c_.n_embd, c_.n_vocab));
    FRUGAL_ASSIGN_OR_RETURN(output_norm_, L.vector("output_norm.weight", c_.n_embd));
    FRUGAL_ASSIGN_OR_RETURN(output_, L.matrix("output.weight", c_.n_embd, c_.n_vocab, true));
    if (!output_.data) output_ = token_embd_;
    layers_.resize((size_t)c_.n_layer);
    const MlaConfig& m = c_.mla;
    const int64_t H = c_.n_head, Lr = m.kv_lora_rank, nope = m.qk_nope, vh = m.v_head;
    for (int64_t l = 0; l < c_.n_layer; ++l) {
      NaiveLayer& ly = layers_[(size_t)l];
      const std::string p = "blk." + std::to_string(l) + ".";
      FRUGAL_ASSIGN_OR_RETURN(ly.attn_norm, L.vector(p + "attn_norm.weight", c_.n_embd));
      FRUGAL_ASSIGN_OR_RETURN(ly.ffn_norm, L.vector(p + "ffn_norm.weight", c_.n_embd));
      FRUGAL_RETURN_IF_ERROR(load_mla(L, f, c_, l, &ly.mla));
      if (l < c_.moe.n_layer_dense_lead) {
        FRUGAL_RETURN_IF_ERROR(load_ffn(L, c_, l, c_.n_ff, &ly.ffn));
      } else {
        FRUGAL_RETURN_IF_ERROR(load_moe_layer(L, c_, l, &ly.moe));
      }
      ly.w_uk.resize((size_t)(H * nope * Lr));
      ly.w_uv.resize((size_t)(H * vh * Lr));
      if (const GgufTensorInfo* kb = f.tensor(p + "attn_k_b.weight")) {
        const std::vector<float> k = dequantize(*kb), v = dequantize(*f.tensor(p + "attn_v_b.weight"));
        for (int64_t h = 0; h < H; ++h)
          for (int64_t i = 0; i < Lr; ++i)
            for (int64_t j = 0; j < nope; ++j)  // k_b head h: L rows of nope = W_UK,h transposed
              ly.w_uk[(size_t)((h * nope + j) * Lr + i)] = k[(size_t)((h * Lr + i) * nope + j)];
        std::copy(v.begin(), v.end(), ly.w_uv.begin());  // v_b head h: v rows of L = W_UV,h
      } else {
        const std::vector<float> kv = dequantize(*f.tensor(p + "attn_kv_b.weight"));
        for (int64_t h = 0; h < H; ++h) {
          const float* head = kv.data() + h * (nope + vh) * Lr;  // nope k rows then v rows, each of L
          std::copy(head, head + nope * Lr, ly.w_uk.begin() + h * nope * Lr);
          std::copy(head + nope * Lr, head + (nope + vh) * Lr, ly.w_uv.begin() + h * vh * Lr);
        }
      }
    }
    return Status::Ok();
  }

  // Logits [T, V] of tokens at positions 0..T-1 (one pass, no cache).
  std::vector<float> logits(Backend& be, const std::vector<int32_t>& tokens) {
    const int64_t T = (int64_t)tokens.size(), D = c_.n_embd, V = c_.n_vocab;
    ws_.reserve(c_, T);
    std::vector<float> x((size_t)(T * D)), a((size_t)(T * D)), o, out((size_t)(T * D));
    std::vector<int32_t> pos((size_t)T), rows((size_t)T);
    for (int64_t t = 0; t < T; ++t) pos[(size_t)t] = rows[(size_t)t] = (int32_t)t;
    be.get_rows(token_embd_, tokens.data(), T, x.data());
    for (int64_t l = 0; l < c_.n_layer; ++l) {
      const NaiveLayer& ly = layers_[(size_t)l];
      be.rms_norm(x.data(), ly.attn_norm, T, D, c_.rms_eps, a.data());
      naive_attention(be, ly, pos.data(), T, a.data(), &o);
      be.matmul(ly.mla.wo, o.data(), T, out.data());
      be.add(x.data(), out.data(), T * D);
      be.rms_norm(x.data(), ly.ffn_norm, T, D, c_.rms_eps, a.data());
      if (l < c_.moe.n_layer_dense_lead) {
        ffn_block(be, c_, ly.ffn, T, ws_, a.data(), x.data());
      } else {
        moe_ffn(be, c_, ly.moe, l, T, a.data(), x.data(), moe_ws_, nullptr);
      }
    }
    Batch b;
    b.T = T;
    b.logit_rows = rows.data();
    b.n_logits = T;
    std::vector<float> logits((size_t)(T * V));
    output_head(be, c_, output_norm_, output_, b, ws_, x.data(), logits.data());
    return logits;
  }

 private:
  // o[T, H * v_head] = causal MHA with per-head keys/values decompressed from the latent.
  void naive_attention(Backend& be, const NaiveLayer& ly, const int32_t* pos, int64_t T, const float* a,
                       std::vector<float>* o) {
    const MlaConfig& m = c_.mla;
    const int64_t H = c_.n_head, Lr = m.kv_lora_rank, nope = m.qk_nope, R = m.qk_rope, vh = m.v_head;
    const int64_t hk = nope + R, kvw = Lr + R;
    mla_qkv(be, c_, ly.mla, pos, T, a, mla_ws_);
    const float* q = mla_ws_.q.data();   // [T, H, hk], q_pe roped
    const float* kv = mla_ws_.kv.data();  // [T, L + R] = [c_kv normed | k_pe roped]
    std::vector<double> k_nope((size_t)(T * H * nope)), v((size_t)(T * H * vh));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t j = 0; j < nope; ++j) {
          double s = 0;
          for (int64_t i = 0; i < Lr; ++i) s += (double)ly.w_uk[(size_t)((h * nope + j) * Lr + i)] * kv[t * kvw + i];
          k_nope[(size_t)((t * H + h) * nope + j)] = s;
        }
        for (int64_t r = 0; r < vh; ++r) {
          double s = 0;
          for (int64_t i = 0; i < Lr; ++i) s += (double)ly.w_uv[(size_t)((h * vh + r) * Lr + i)] * kv[t * kvw + i];
          v[(size_t)((t * H + h) * vh + r)] = s;
        }
      }
    o->assign((size_t)(T * H * vh), 0.f);
    std::vector<double> p((size_t)T);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const float* qh = q + (t * H + h) * hk;
        double mx = -INFINITY, sum = 0;
        for (int64_t s = 0; s <= t; ++s) {
          double d = 0;
          for (int64_t j = 0; j < nope; ++j) d += (double)qh[j] * k_nope[(size_t)((s * H + h) * nope + j)];
          for (int64_t r = 0; r < R; ++r) d += (double)qh[nope + r] * kv[s * kvw + Lr + r];
          p[(size_t)s] = d * c_.kq_scale;
          mx = std::max(mx, p[(size_t)s]);
        }
        for (int64_t s = 0; s <= t; ++s) sum += (p[(size_t)s] = std::exp(p[(size_t)s] - mx));
        for (int64_t r = 0; r < vh; ++r) {
          double acc = 0;
          for (int64_t s = 0; s <= t; ++s) acc += p[(size_t)s] * v[(size_t)((s * H + h) * vh + r)];
          (*o)[(size_t)((t * H + h) * vh + r)] = (float)(acc / sum);
        }
      }
  }

  ModelConfig c_;
  WeightView token_embd_, output_;
  const float* output_norm_ = nullptr;
  std::vector<NaiveLayer> layers_;
  Workspace ws_;
  MlaWorkspace mla_ws_;
  MoeWorkspace moe_ws_;
};

double max_row_nmse(const std::vector<float>& a, const std::vector<float>& b, int64_t V) {
  double worst = 0;
  for (size_t r = 0; r * V < b.size(); ++r) {
    double num = 0, den = 0;
    for (int64_t v = 0; v < V; ++v) {
      const double x = a[r * V + v], y = b[r * V + v];
      num += (x - y) * (x - y);
      den += y * y;
    }
    worst = std::max(worst, num / den);
  }
  return worst;
}

class MlaAbsorbed : public ::testing::TestWithParam<DeepseekCase> {};

// Budgets (max NMSE over positions): F32 weights differ only by evaluation order (float vs double,
// absorbed vs decompressed): 1e-9. Quantized weights: the model rounds q_nope (split form) or the
// attention output (both forms) to the weight's vec_dot_type where the oracle multiplies exact values:
// measured 3.8e-4 (Q8_0) and 3.6e-4 (Q4_K_M) on these models; budget 2e-3 (5x). A wrong head mapping,
// transpose or scale gives ~1e-1.
double absorbed_budget(const std::string& type) { return type == "F32" ? 1e-9 : 2e-3; }

TEST_P(MlaAbsorbed, MatchesNaiveMhaInBatchAndDecode) {
  const DeepseekCase& dc = GetParam();
  if (dc.spec.arch != "deepseek2") GTEST_SKIP() << "no MLA in " << dc.spec.arch;
  const std::string path = test_temp_path("mla-" + dc.name + ".gguf");
  ASSERT_TRUE(write_synth_model(dc.spec, path).ok());
  auto loaded = Model::load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  Model& model = **loaded;
  NaiveDeepseek2 naive;
  Status st = naive.load(model);
  ASSERT_TRUE(st.ok()) << st.message();
  auto ref = make_ref_backend();
  const std::vector<int32_t>& tokens = kDeepseekTokens;
  const int64_t T = (int64_t)tokens.size(), V = model.config().n_vocab;
  const std::vector<float> expect = naive.logits(*ref, tokens);

  ThreadPool pool(2);
  auto cpu = make_cpu_backend(&pool, detect_isa());
  std::vector<int32_t> pos((size_t)T);
  for (int64_t t = 0; t < T; ++t) pos[(size_t)t] = (int32_t)t;
  for (Backend* be : {ref.get(), cpu.get()}) {
    KvCache kv(model.config(), 64, DType::F32);
    std::vector<float> batch((size_t)(T * V)), decode((size_t)(T * V));
    ASSERT_TRUE(model.forward(*be, kv, tokens.data(), pos.data(), T, batch.data(), LogitsMode::kAll).ok());
    KvCache kv2(model.config(), 64, DType::F32);
    for (int64_t t = 0; t < T; ++t)
      ASSERT_TRUE(model.forward(*be, kv2, &tokens[t], &pos[t], 1, decode.data() + t * V, LogitsMode::kLast).ok());
    const double nb = max_row_nmse(batch, expect, V), nd = max_row_nmse(decode, expect, V);
    EXPECT_LE(nb, absorbed_budget(dc.spec.weight_type)) << be->name() << " batch";
    EXPECT_LE(nd, absorbed_budget(dc.spec.weight_type)) << be->name() << " decode";
    std::printf("  %s %s: absorbed vs naive NMSE batch %.3g decode %.3g\n", dc.name.c_str(), be->name(), nb, nd);
  }
  std::remove(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Synth, MlaAbsorbed, ::testing::ValuesIn(deepseek_test_cases()),
                         [](const auto& info) { return info.param.name; });

// The latent cache: one row of kv_lora + rope per token and layer, V aliased onto K.
TEST(MlaCache, LatentModeStoresOnlyTheLatentRow) {
  ModelConfig c;
  c.n_layer = 2;
  c.n_head = 8;
  c.n_head_kv = 1;
  c.head_dim_k = 64 + 16;
  c.head_dim_v = 0;
  KvCache kv(c, 8, DType::F32);
  EXPECT_EQ(kv.bytes_per_token(), 2u * 80u * 4u);
  EXPECT_EQ(kv.bytes(), 8u * 2u * 80u * 4u);
  std::vector<float> row(80);
  for (int i = 0; i < 80; ++i) row[(size_t)i] = (float)i;
  const int32_t slot = 5;
  kv.store(1, &slot, 1, row.data(), 80, nullptr, 0);
  KvView v = kv.view(1, 6);
  EXPECT_EQ(v.v, v.k);
  EXPECT_EQ(v.v_row_bytes, v.k_row_bytes);
  EXPECT_EQ(reinterpret_cast<const float*>(v.v_row(5))[63], 63.f);
  EXPECT_EQ(reinterpret_cast<const float*>(v.k_row(5))[79], 79.f);
}

// YaRN (rope.scaling yarn, factor 40, yarn_log_multiplier 0.0707: RoPE magnitude 1, mscale^2 in the kq scale)
// with q-LoRA, sigmoid+bias routing and groups, against llama.cpp: llama-server (commit 80fb11ac, the goldens'
// build; F32 KV, flash attention off) greedily continued this prompt on the model below, written by our
// writer (byte-reproducible from the spec), and returned the top-5 log-probabilities of each step.
// The same model without YaRN keys differs from these by up to 6.3 in log-probability.
TEST(MlaYarn, MatchesLlamaCppLogprobs) {
  SynthSpec s;
  s.arch = "deepseek2";
  s.n_embd = 256;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_ff = 256;
  s.n_ctx = 4096;
  s.n_layer_dense_lead = 1;
  s.q_lora_rank = 128;
  s.kv_lora_rank = 128;
  s.qk_nope = 32;
  s.qk_rope = 32;
  s.v_head = 32;
  s.n_expert = 8;
  s.n_expert_used = 2;
  s.n_ff_exp = 64;
  s.n_expert_shared = 1;
  s.gate_sigmoid = true;
  s.exp_probs_b = true;
  s.expert_weights_norm = true;
  s.expert_weights_scale = 2.5f;
  s.n_expert_groups = 4;
  s.n_expert_groups_used = 2;
  s.yarn_factor = 40.f;
  s.yarn_log_mul = 0.0707f;
  s.fan_in_std = true;
  s.weight_type = "F32";
  s.vocab_from = std::string(FRUGAL_SHARED_DIR) + "/models/stories260K.gguf";
  struct Step {
    int32_t id;
    std::pair<int32_t, float> top[5];
  };
  const Step steps[] = {
      {411, {{411, -1.237783f}, {49, -1.702774f}, {75, -2.502974f}, {367, -2.977281f}, {304, -3.195042f}}},
      {345, {{345, -0.923629f}, {48, -2.194195f}, {356, -2.293806f}, {254, -2.351162f}, {346, -3.457491f}}},
      {413, {{413, -1.182951f}, {397, -2.321423f}, {435, -2.945811f}, {221, -3.054968f}, {184, -3.081323f}}},
      {98, {{98, -0.897758f}, {33, -1.487464f}, {146, -2.705986f}, {86, -2.710996f}, {81, -3.960552f}}},
      {21, {{21, -1.190132f}, {202, -2.294785f}, {10, -3.099483f}, {256, -3.175435f}, {478, -3.345078f}}},
      {434, {{434, -0.652766f}, {187, -1.401194f}, {350, -3.193691f}, {85, -4.169901f}, {423, -4.188047f}}},
      {275, {{275, -0.184958f}, {508, -3.187932f}, {406, -3.841216f}, {65, -4.526107f}, {407, -4.626281f}}},
      {374, {{374, -1.363448f}, {263, -2.194466f}, {464, -2.529684f}, {183, -2.711316f}, {503, -2.713036f}}},
      {439, {{439, -1.930124f}, {208, -2.038121f}, {283, -2.592589f}, {254, -2.708701f}, {253, -2.771600f}}},
      {373, {{373, -0.632147f}, {355, -1.568989f}, {504, -3.599707f}, {19, -3.710186f}, {76, -3.864256f}}},
      {338, {{338, -0.396588f}, {262, -3.246988f}, {323, -3.882057f}, {176, -3.958514f}, {94, -4.060383f}}},
      {290, {{290, -1.538339f}, {263, -1.648406f}, {37, -2.223220f}, {239, -2.732513f}, {456, -2.760523f}}},
  };
  const std::string path = test_temp_path("mla-yarn.gguf");
  ASSERT_TRUE(write_synth_model(s, path).ok());
  auto loaded = Model::load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  Model& model = **loaded;
  const int64_t V = model.config().n_vocab;
  std::vector<int32_t> tokens = kDeepseekTokens;
  const int64_t P = (int64_t)tokens.size();
  for (const Step& st : steps) tokens.push_back(st.id);
  tokens.pop_back();
  const int64_t T = (int64_t)tokens.size();
  std::vector<int32_t> pos((size_t)T);
  for (int64_t t = 0; t < T; ++t) pos[(size_t)t] = (int32_t)t;
  ThreadPool pool(2);
  auto be = make_cpu_backend(&pool, detect_isa());
  KvCache kv(model.config(), 64, DType::F32);
  std::vector<float> logits((size_t)(T * V));
  ASSERT_TRUE(model.forward(*be, kv, tokens.data(), pos.data(), T, logits.data(), LogitsMode::kAll).ok());
  double worst = 0;
  for (size_t i = 0; i < std::size(steps); ++i) {
    const float* row = logits.data() + (P - 1 + (int64_t)i) * V;
    const float mx = *std::max_element(row, row + V);
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp((double)row[v] - mx);
    const double lse = mx + std::log(sum);
    EXPECT_EQ(std::max_element(row, row + V) - row, steps[i].id) << "step " << i;
    for (const auto& [id, lp] : steps[i].top) worst = std::max(worst, std::abs(row[id] - lse - lp));
  }
  EXPECT_LE(worst, 1e-4);  // measured 5.5e-6
  std::remove(path.c_str());
}

}  // namespace
}  // namespace frugal
