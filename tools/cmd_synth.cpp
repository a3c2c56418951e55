// frugal synth: write a random-weight model of a given shape (for benchmarks and tests).
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "model/synth.h"

namespace frugal::cli {

namespace {

struct SynthOptions {
  std::string output;
  SynthSpec spec;
};

Status synth(const SynthOptions& o) {
  FRUGAL_RETURN_IF_ERROR(write_synth_model(o.spec, o.output));
  const SynthSpec& s = o.spec;
  const std::string vocab = !s.vocab_from.empty() ? s.vocab_from
                            : s.n_vocab > 0       ? std::to_string(s.n_vocab) + " synthetic tokens"
                                                  : "synthetic byte vocabulary";
  std::fprintf(stderr, "frugal synth: wrote %s (%s, n_embd %d, %d layers, %d/%d heads, n_ff %d, %s, vocab: %s)\n",
               o.output.c_str(), s.arch.c_str(), s.n_embd, s.n_layer, s.n_head,
               s.arch == "deepseek2" ? (s.mla_split ? 1 : s.n_head) : s.n_head_kv, s.n_ff, s.weight_type.c_str(),
               vocab.c_str());
  if (s.arch == "deepseek" || s.arch == "deepseek2")
    std::fprintf(stderr, "frugal synth: moe %d experts top-%d, %d shared, n_ff_exp %d, %d dense leading layers\n",
                 s.n_expert, s.n_expert_used, s.n_expert_shared, s.n_ff_exp, s.n_layer_dense_lead);
  if (s.arch == "deepseek2")
    std::fprintf(stderr, "frugal synth: mla q_lora %d, kv_lora %d, qk_nope %d, qk_rope %d, v_head %d, %s form\n",
                 s.q_lora_rank, s.kv_lora_rank, s.qk_nope, s.qk_rope, s.v_head, s.mla_split ? "split k_b/v_b" : "kv_b");
  return Status::Ok();
}

}  // namespace

Command add_synth_command(CLI::App& root) {
  auto o = std::make_shared<SynthOptions>();
  SynthSpec& s = o->spec;
  CLI::App* app = root.add_subcommand("synth", "Write a random-weight GGUF model of a given shape (for benchmarks)");
  app->add_option("-o,--output", o->output, "output .gguf file")->required();
  app->add_option("--arch", s.arch, "architecture: llama, qwen2, deepseek or deepseek2")->capture_default_str();
  app->add_option("--n-embd", s.n_embd, "embedding width")->capture_default_str();
  app->add_option("--n-layer", s.n_layer, "layers")->capture_default_str();
  app->add_option("--n-head", s.n_head, "attention heads")->capture_default_str();
  app->add_option("--n-head-kv", s.n_head_kv, "key/value heads")->capture_default_str();
  app->add_option("--n-ff", s.n_ff, "feed-forward width")->capture_default_str();
  app->add_option("--n-vocab", s.n_vocab, "vocabulary size (0: that of --vocab-from, or the 259-token byte vocabulary)")->capture_default_str();
  app->add_option("--n-ctx", s.n_ctx, "training context length written to the file")->capture_default_str();
  app->add_option("--type", s.weight_type, "weight type: F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, ...")->capture_default_str();
  app->add_option("--vocab-from", s.vocab_from, "copy the tokenizer from this GGUF (model or vocab-only)");
  app->add_option("--seed", s.seed, "random seed")->capture_default_str();
  app->add_flag("--tied", s.tied_output, "tie the output matrix to the token embeddings");
  app->add_option("-t,--threads", s.n_threads, "threads writing the weights (0: all cores)")->capture_default_str();
  app->add_flag("--fan-in-std", s.fan_in_std, "matrices N(0, 1/row length) (unit-RMS projections) instead of --std");
  app->add_option("--std", s.weight_std, "standard deviation of the random weights")->capture_default_str();
  // MoE (deepseek, deepseek2)
  app->add_option("--n-expert", s.n_expert, "routed experts per MoE layer")->capture_default_str();
  app->add_option("--n-expert-used", s.n_expert_used, "experts per token")->capture_default_str();
  app->add_option("--n-expert-shared", s.n_expert_shared, "shared experts")->capture_default_str();
  app->add_option("--n-ff-exp", s.n_ff_exp, "width of one expert")->capture_default_str();
  app->add_option("--n-dense-lead", s.n_layer_dense_lead, "leading dense layers")->capture_default_str();
  app->add_option("--expert-groups", s.n_expert_groups, "expert groups (deepseek2)")->capture_default_str();
  app->add_option("--expert-groups-used", s.n_expert_groups_used, "groups kept per token")->capture_default_str();
  app->add_flag("--sigmoid-gate", s.gate_sigmoid, "sigmoid gating (deepseek2; default softmax)");
  app->add_flag("--exp-probs-b", s.exp_probs_b, "write the exp_probs_b selection bias (deepseek2)");
  app->add_flag("--norm-expert-weights", s.expert_weights_norm, "renormalize the routed weights (deepseek2)");
  app->add_option("--expert-weights-scale", s.expert_weights_scale, "routed weight scale")->capture_default_str();
  // MLA (deepseek2)
  app->add_option("--q-lora-rank", s.q_lora_rank, "q LoRA rank (0: plain attn_q)")->capture_default_str();
  app->add_option("--kv-lora-rank", s.kv_lora_rank, "latent KV width")->capture_default_str();
  app->add_option("--qk-nope", s.qk_nope, "non-rotary q/k head dim")->capture_default_str();
  app->add_option("--qk-rope", s.qk_rope, "rotary q/k head dim")->capture_default_str();
  app->add_option("--v-head", s.v_head, "value head dim")->capture_default_str();
  app->add_flag("!--kv-b", s.mla_split, "write the older attn_kv_b form instead of attn_k_b/attn_v_b");
  app->add_option("--yarn-factor", s.yarn_factor, "YaRN rope scaling factor (deepseek2; > 1 enables)");
  app->add_option("--yarn-log-mul", s.yarn_log_mul, "rope.scaling.yarn_log_multiplier");
  app->add_option("--yarn-orig-ctx", s.yarn_orig_ctx, "rope.scaling.original_context_length")->capture_default_str();
  return Command{app, [o] { return synth(*o); }};
}

}  // namespace frugal::cli
