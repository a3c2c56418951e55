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
               o.output.c_str(), s.arch.c_str(), s.n_embd, s.n_layer, s.n_head, s.n_head_kv, s.n_ff,
               s.weight_type.c_str(), vocab.c_str());
  return Status::Ok();
}

}  // namespace

Command add_synth_command(CLI::App& root) {
  auto o = std::make_shared<SynthOptions>();
  SynthSpec& s = o->spec;
  CLI::App* app = root.add_subcommand("synth", "Write a random-weight GGUF model of a given shape (for benchmarks)");
  app->add_option("-o,--output", o->output, "output .gguf file")->required();
  app->add_option("--arch", s.arch, "architecture: llama or qwen2")->capture_default_str();
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
  return Command{app, [o] { return synth(*o); }};
}

}  // namespace frugal::cli
