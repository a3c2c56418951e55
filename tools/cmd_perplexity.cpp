// frugal perplexity: llama-perplexity's default method over a text file (see compress/perplexity.h), and
// with --kl-base the KL divergence, top-1 agreement and Δppl against a base model (a GGUF file run on the
// same tokens, or logits saved earlier with --save-logits).
#include <cstdio>
#include <memory>

#include "base/timer.h"
#include "cli_common.h"
#include "compress/perplexity.h"
#include "compress/perplexity_kl.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace frugal::cli {

namespace {

struct PerplexityCliOptions {
  std::string model;
  std::string file;
  int64_t n_ctx = 512;
  int64_t n_batch = 2048;
  int64_t n_chunks = -1;
  int threads = 0;
  std::string kl_base;
  std::string save_logits;
  std::string isa = "auto";
};

// The base: a second model or a saved file (whichever --kl-base names), kept alive for the run.
struct BaseSource {
  std::unique_ptr<Model> model;
  std::unique_ptr<LogitsFileReader> file;
  BaseLogitsFn logits;
};

Status open_base(const PerplexityCliOptions& o, const Model& model, const Tokenizer& tok, const std::string& text,
                 const PerplexityPlan& plan, const std::vector<int32_t>& fed, Backend& backend, BaseSource* base) {
  if (looks_like_gguf(o.kl_base)) {
    FRUGAL_ASSIGN_OR_RETURN(base->model, Model::load(o.kl_base));
    FRUGAL_RETURN_IF_ERROR(check_base_model(o.model, model, o.kl_base, *base->model).with_context("--kl-base"));
    FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> btok, Tokenizer::from_gguf(base->model->gguf()));
    if (btok->encode(text, true, false) != tok.encode(text, true, false)) {
      return invalid_argument("--kl-base: vocabulary mismatch: " + o.kl_base + " tokenizes the text differently from " +
                              o.model);
    }
    FRUGAL_ASSIGN_OR_RETURN(base->logits, base_logits_from_model(*base->model, backend, plan));
    return Status::Ok();
  }
  FRUGAL_ASSIGN_OR_RETURN(base->file, LogitsFileReader::open(o.kl_base));
  FRUGAL_RETURN_IF_ERROR(
      check_base_file(o.model, model.config().n_vocab, plan, fed, o.kl_base, *base->file).with_context("--kl-base"));
  base->logits = base_logits_from_file(*base->file);
  return Status::Ok();
}

Status perplexity(const PerplexityCliOptions& o) {
  FRUGAL_ASSIGN_OR_RETURN(std::string text, read_text_file(o.file));
  FRUGAL_ASSIGN_OR_RETURN(Runtime rt, make_runtime(o.threads, o.isa));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::load(o.model));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::from_gguf(model->gguf()));
  const int64_t V = model->config().n_vocab;
  const std::vector<int32_t> tokens = tok->encode(text, /*add_special=*/true, /*parse_special=*/false);
  PerplexityOptions po;
  po.n_ctx = o.n_ctx;
  po.n_batch = o.n_batch;
  po.n_chunks = o.n_chunks;
  po.add_bos = tok->add_bos() && tok->bos() != Tokenizer::kNoToken;
  po.bos = po.add_bos ? tok->bos() : 0;
  FRUGAL_ASSIGN_OR_RETURN(PerplexityPlan plan, plan_perplexity((int64_t)tokens.size(), po));
  std::vector<int32_t> fed;
  for (int64_t c = 0; c < plan.n_chunks; ++c) {
    const std::vector<int32_t> ch = chunk_tokens(tokens, plan, po, c);
    fed.insert(fed.end(), ch.begin(), ch.end());
  }
  std::fprintf(stderr, "frugal perplexity: %s: %s | %s, threads %d\n", o.model.c_str(),
               model_description(model->gguf(), model->n_params()).c_str(), isa_name(rt.isa), rt.n_threads);
  std::fprintf(stderr,
               "frugal perplexity: %s: %zu tokens; %lld chunks of %lld (batch %lld), scoring %lld tokens per chunk "
               "(positions %lld..%lld)\n",
               o.file.c_str(), tokens.size(), (long long)plan.n_chunks, (long long)plan.n_ctx, (long long)plan.n_batch,
               (long long)plan.n_scored, (long long)plan.first, (long long)plan.n_ctx - 2);

  BaseSource base;
  if (!o.kl_base.empty()) FRUGAL_RETURN_IF_ERROR(open_base(o, *model, *tok, text, plan, fed, *rt.backend, &base));
  std::unique_ptr<LogitsFileWriter> writer;
  if (!o.save_logits.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(writer, LogitsFileWriter::create(o.save_logits, V, plan, fed));
  }
  auto save = [&](int64_t, const float* logits) -> Status {
    return writer ? writer->append(logits) : Status::Ok();
  };
  auto progress = [](int64_t c, double running) {
    std::printf("[%lld]%.4f,", (long long)c + 1, running);
    std::fflush(stdout);
  };
  const double t0 = now_seconds();
  PerplexityResult r;
  std::string kl_report;
  if (base.logits) {
    FRUGAL_ASSIGN_OR_RETURN(KlResult k, compute_kl(*model, *rt.backend, tokens, po, base.logits, progress, save));
    r = std::move(k.ppl);
    kl_report = format_kl_report(k.stats);
  } else {
    FRUGAL_ASSIGN_OR_RETURN(r, compute_perplexity(*model, *rt.backend, tokens, po, progress, save));
  }
  std::printf("\n");
  if (writer) FRUGAL_RETURN_IF_ERROR(writer->close());
  const double secs = now_seconds() - t0;
  std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
  std::fprintf(stderr, "frugal perplexity: %lld scored tokens, %.2f s (%.1f tokens/s evaluated%s)\n",
               (long long)r.count, secs, (double)(plan.n_chunks * plan.n_ctx) / secs,
               base.model ? ", base model included" : "");
  if (writer) std::fprintf(stderr, "frugal perplexity: saved logits to %s\n", o.save_logits.c_str());
  if (!kl_report.empty()) std::printf("\n%s", kl_report.c_str());
  return Status::Ok();
}

}  // namespace

Command add_perplexity_command(CLI::App& root) {
  auto o = std::make_shared<PerplexityCliOptions>();
  CLI::App* app = root.add_subcommand(
      "perplexity",
      "Perplexity of a model over a text file (llama-perplexity's method: chunks of -c tokens, second half of each "
      "scored); with --kl-base, KL divergence, top-1 agreement and delta-PPL against a base model");
  app->add_option("-m,--model", o->model, "GGUF model file")->required();
  app->add_option("-f,--file", o->file, "text file (tokenized whole, with BOS)")->required();
  app->add_option("-c,--ctx-size", o->n_ctx, "tokens per chunk (the text needs at least 2x this)")
      ->capture_default_str();
  app->add_option("-b,--batch-size", o->n_batch, "tokens per forward pass (capped at -c)")->capture_default_str();
  app->add_option("--chunks", o->n_chunks, "chunks to evaluate (-1: all)")->capture_default_str();
  app->add_option("-t,--threads", o->threads, "threads (default: number of cores)");
  app->add_option("--kl-base", o->kl_base,
                  "base model (GGUF) run on the same tokens, or a logits file from --save-logits: report KL "
                  "divergence, top-1 agreement, PPL ratio and difference");
  app->add_option("--save-logits", o->save_logits,
                  "write this model's scored logits to FILE (later: --kl-base FILE without loading this model)");
  app->add_option("--isa", o->isa, "kernels: scalar, avx2, avx512 or auto")->capture_default_str();
  return Command{app, [o] { return perplexity(*o); }};
}

}  // namespace frugal::cli
