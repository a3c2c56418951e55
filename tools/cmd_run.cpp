// frugal run: generate text from a prompt, streamed to stdout; timings to stderr.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "base/timer.h"
#include "cli_common.h"
#include "engine/generator.h"
#include "model/model.h"
#include "model/moe.h"
#include "sample/sampler.h"
#include "tokenizer/tokenizer.h"

namespace frugal::cli {

namespace {

struct RunOptions {
  std::string model;
  std::string prompt;
  std::string prompt_file;
  int64_t n_predict = 256;
  int threads = 0;
  int64_t n_ctx = 0;
  int64_t n_batch = 512;
  int64_t seed = (int64_t)kDefaultSeed;
  std::string kv_type = "f16";
  std::string isa = "auto";
  bool parse_special = false;
  bool verbose = false;
  LoadFlags load;
  SamplingParams sampling;
};

// Set by static initialization, just before main(): the start of `frugal run` for its start-up figure.
const double kProcessStart = now_seconds();

constexpr int64_t kDefaultCtx = 4096;

constexpr int64_t kRunRepackMinPrompt = 2048;  // prompt tokens from which run builds repacked weights

Status run(const RunOptions& o) {
  if (!o.prompt.empty() && !o.prompt_file.empty()) return invalid_argument("give the prompt with -p or -f, not both");
  std::string prompt = o.prompt;
  if (!o.prompt_file.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(prompt, read_text_file(o.prompt_file));
  }
  if (o.n_batch <= 0) return invalid_argument("-b: batch size must be > 0");
  if (o.n_ctx < 0) return invalid_argument("-c: context size must be >= 0");
  SamplingParams sp = o.sampling;
  sp.seed = o.seed < 0 ? random_seed() : (uint64_t)o.seed;
  FRUGAL_RETURN_IF_ERROR(sp.validate());
  FRUGAL_ASSIGN_OR_RETURN(DType kv_type, parse_kv_type(o.kv_type));
  FRUGAL_ASSIGN_OR_RETURN(Runtime rt, make_runtime(o.threads, o.isa, o.load.repack_limit()));

  const double t0 = now_seconds();
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, load_model(o.model, o.load, rt.pool.get(), "frugal run"));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::from_gguf(model->gguf()));
  const double load_s = now_seconds() - t0;

  const ModelConfig& cfg = model->config();
  int64_t n_ctx = o.n_ctx;
  if (n_ctx == 0) n_ctx = cfg.n_ctx_train > 0 ? std::min(cfg.n_ctx_train, kDefaultCtx) : kDefaultCtx;
  const std::vector<int32_t> ids = tok->encode(prompt, /*add_special=*/true, o.parse_special);
  // Repacked weight copies (backend/matmul.h) pay for themselves over many batched calls (serve, bench)
  // or one very long prefill; run's decode reads the raw rows, and for a shorter prompt building them cost
  // more than it saved (1.1B Q4_0 / Q8_0, 2 threads: 902-token prompt to first token 2.5 / 2.7 s without,
  // 2.8 / 2.9 s with; 2 tokens, Q4_0: 0.34-0.40 s without, 0.39-1.18 s with). Same results either way.
  if ((int64_t)ids.size() < kRunRepackMinPrompt) rt.backend = make_cpu_backend(rt.pool.get(), rt.isa, 0);

  std::fprintf(stderr, "frugal run: %s: %s, %s params, %s | %s, threads %d | ctx %lld, kv %s, batch %lld\n",
               o.model.c_str(), model_description(model->gguf(), model->n_params()).c_str(),
               format_count(model->n_params()).c_str(), format_bytes(tensor_bytes(model->gguf())).c_str(),
               isa_name(rt.isa), rt.n_threads, (long long)n_ctx, dtype_name(kv_type), (long long)o.n_batch);
  std::fprintf(stderr, "frugal run: sampling %s\n", sp.summary().c_str());
  std::fprintf(stderr, "frugal run: prompt %zu tokens\n", ids.size());

  FRUGAL_RETURN_IF_ERROR(KvCache::supports(cfg, kv_type));
  KvCache kv(cfg, n_ctx, kv_type);
  std::fprintf(stderr, "frugal run: kv cache %llu bytes per token%s, %s for %lld positions\n",
               (unsigned long long)kv.bytes_per_token(),
               cfg.mla.kv_lora_rank > 0 ? " (MLA latent: kv_lora_rank + qk_rope values per layer)" : "",
               format_bytes(kv.bytes()).c_str(), (long long)n_ctx);
  if (model->moe_stats()) {
    std::fprintf(stderr, "frugal run: moe %lld experts, %lld routed + %lld shared per token; %s of %s params active\n",
                 (long long)cfg.moe.n_expert, (long long)cfg.moe.n_expert_used, (long long)cfg.moe.n_expert_shared,
                 format_count(active_params(*model)).c_str(), format_count(model->n_params()).c_str());
  }
  Generator gen(*model, *tok, *rt.backend, kv, GeneratorOptions{o.n_batch});
  Sampler sampler(sp, cfg.n_vocab);
  double first_token = 0;  // first text out, seconds since process start
  FRUGAL_ASSIGN_OR_RETURN(GenerationResult r, gen.generate(ids, o.n_predict, sampler, [&](const std::string& text) {
                            if (first_token == 0) first_token = now_seconds() - kProcessStart;
                            std::fwrite(text.data(), 1, text.size(), stdout);
                            std::fflush(stdout);
                            return true;
                          }));
  std::fputc('\n', stdout);
  std::fflush(stdout);
  std::fprintf(stderr, "frugal run: load %.1f ms\n", load_s * 1e3);
  if (o.verbose) {
    if (first_token == 0) first_token = now_seconds() - kProcessStart;
    std::fprintf(stderr,
                 "frugal run: start-up: process start to model+tokenizer loaded %.1f ms (load %.1f ms), to first "
                 "token %.1f ms; %s, KV %s\n",
                 (t0 + load_s - kProcessStart) * 1e3, load_s * 1e3, first_token * 1e3, huge_page_summary().c_str(),
                 kv.huge_pages() ? "MADV_HUGEPAGE" : "no huge pages");
  }
  std::fprintf(stderr, "frugal run: prompt %lld tokens in %.1f ms (%.2f tokens/s)\n", (long long)r.n_prompt,
               r.prompt_s * 1e3, r.prompt_tokens_per_s());
  std::fprintf(stderr, "frugal run: generation %zu tokens in %.1f ms (%.2f tokens/s), stop: %s\n", r.tokens.size(),
               r.gen_s * 1e3, r.gen_tokens_per_s(), stop_reason_name(r.stop));
  return Status::Ok();
}

}  // namespace

Command add_run_command(CLI::App& root) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* app = root.add_subcommand("run", "Generate text from a prompt (streamed to stdout; timings to stderr)");
  app->add_option("-m,--model", o->model, "GGUF model file")->required();
  app->add_option("-p,--prompt", o->prompt, "prompt text");
  app->add_option("-f,--file", o->prompt_file, "read the prompt from this file");
  app->add_option("-n,--n-predict", o->n_predict, "tokens to generate (-1: until end of generation or full context)")
      ->capture_default_str();
  app->add_option("-t,--threads", o->threads, "threads (default: number of cores)");
  app->add_option("-c,--ctx-size", o->n_ctx, "context size in tokens (0: the model's, at most 4096)")
      ->capture_default_str();
  app->add_option("-b,--batch-size", o->n_batch, "prompt tokens per forward pass")->capture_default_str();
  app->add_option("--temp", o->sampling.temperature, "temperature (<= 0: greedy)")->capture_default_str();
  app->add_option("--top-k", o->sampling.top_k, "top-k (<= 0: off)")->capture_default_str();
  app->add_option("--top-p", o->sampling.top_p, "top-p (1: off)")->capture_default_str();
  app->add_option("--min-p", o->sampling.min_p, "min-p (0: off)")->capture_default_str();
  app->add_option("--repeat-penalty", o->sampling.repeat_penalty, "repetition penalty (1: off)")
      ->capture_default_str();
  app->add_option("--repeat-last-n", o->sampling.penalty_last_n, "penalty window in tokens (0: off, -1: unbounded)")
      ->capture_default_str();
  app->add_option("--presence-penalty", o->sampling.presence_penalty, "presence penalty (0: off)")
      ->capture_default_str();
  app->add_option("--frequency-penalty", o->sampling.frequency_penalty, "frequency penalty (0: off)")
      ->capture_default_str();
  app->add_option("--seed", o->seed, "sampling seed (-1: random)")->capture_default_str();
  app->add_option("--kv-type", o->kv_type, "KV cache type: f32, f16 or q8_0")->capture_default_str();
  app->add_option("--isa", o->isa, "kernels: scalar, avx2, avx512 or auto")->capture_default_str();
  app->add_flag("--parse-special", o->parse_special, "treat special-token text in the prompt as special tokens");
  app->add_flag("--verbose", o->verbose, "print start-up timings (process start to load, to first token) and huge pages");
  add_load_flags(app, &o->load);
  app->get_option("--repack-mem")
      ->description("MiB of repacked weight copies prefill may keep beside the weights; run builds them only for "
                    "prompts of >= 2048 tokens (shorter ones finish sooner without; 0: never; same results)");
  return Command{app, [o] { return run(*o); }};
}

}  // namespace frugal::cli
