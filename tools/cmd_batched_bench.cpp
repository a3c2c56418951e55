// frugal batched-bench: aggregate throughput of the continuous-batching engine with N parallel sequences,
// with llama.cpp's llama-batched-bench columns so the two can be compared on the same file and threads.
//
// For each (npp, ntg, npl): npl requests, each with its own random npp-token prompt (no shared prefix, no
// prefix cache), all submitted at once; each generates exactly ntg tokens (end-of-generation ignored).
//   T_PP: submit -> the last request's first token (all prompts prefilled)    S_PP = npl*npp / T_PP
//   T_TG: from there to the last token                                         S_TG = npl*(ntg-1) / T_TG
//   T:    total                                                                S    = npl*(npp+ntg) / T
#include <algorithm>
#include <cstdio>
#include <memory>

#include "base/rng.h"
#include "cli_common.h"
#include "engine/engine.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace frugal::cli {

namespace {

struct BatchedBenchOptions {
  std::string model;
  LoadFlags load;  // --mmap/--no-mmap/--mlock
  std::string npp = "128", ntg = "128", npl = "1,2,4,8,16";
  int threads = 0;
  int64_t n_batch = 2048;
  std::string kv_type = "f16";
  std::string isa = "auto";
  int64_t seed = 1;
};

struct Row {
  int64_t npp, ntg, npl;
  double t_pp, t_tg, t;
};

StatusOr<Row> run_one(Model& model, const Tokenizer& tok, Backend& be, ThreadPool* pool, const BatchedBenchOptions& o, DType kv_type,
                      int64_t npp, int64_t ntg, int64_t npl) {
  EngineConfig c;
  c.n_ctx = npp + ntg + 1;
  c.kv_tokens = npl * (npp + ntg + 16);
  c.kv_type = kv_type;
  c.max_seqs = (int32_t)npl;
  c.max_batched_tokens = o.n_batch;
  c.prefix_caching = false;
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::create(model, tok, be, c, pool));
  Rng rng((uint64_t)o.seed);
  const int64_t V = model.config().n_vocab;
  std::vector<GenerateRequest> reqs((size_t)npl);
  for (GenerateRequest& r : reqs) {
    for (int64_t i = 0; i < npp; ++i) r.prompt.push_back((int32_t)(rng.next_u64() % (uint64_t)V));
    r.sampling.temperature = 0.f;
    r.max_tokens = ntg;
    r.ignore_eos = true;
  }
  engine->start();
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (GenerateRequest& r : reqs) {
    FRUGAL_ASSIGN_OR_RETURN(std::shared_ptr<RequestStream> s, engine->submit(std::move(r)));
    streams.push_back(std::move(s));
  }
  double last_first = 0, last_done = 0;
  for (auto& s : streams) {
    GenerationEvent ev;
    for (;;) {
      if (!s->next(&ev, 600000)) return unavailable("batched-bench: no event for 10 minutes");
      if (ev.done) break;
    }
    if (ev.finish == FinishReason::kError) return ev.error;
    if (ev.usage.completion_tokens != ntg)
      return Status(StatusCode::kInternal, "batched-bench: a request generated " +
                                               std::to_string(ev.usage.completion_tokens) + " tokens, not " +
                                               std::to_string(ntg));
    last_first = std::max(last_first, ev.usage.ttft_s);
    last_done = std::max(last_done, ev.usage.e2e_s);
  }
  engine->stop();
  return Row{npp, ntg, npl, last_first, last_done - last_first, last_done};
}

Status run(const BatchedBenchOptions& o) {
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int64_t> npps, parse_int_list("-npp", o.npp, 1));
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int64_t> ntgs, parse_int_list("-ntg", o.ntg, 2));
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int64_t> npls, parse_int_list("-npl", o.npl, 1));
  if (o.n_batch < 1) return invalid_argument("-b: batch size must be >= 1");
  FRUGAL_ASSIGN_OR_RETURN(DType kv_type, parse_kv_type(o.kv_type));
  FRUGAL_ASSIGN_OR_RETURN(Runtime rt, make_runtime(o.threads, o.isa, o.load.repack_limit()));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, load_model(o.model, o.load, rt.pool.get(), "frugal batched-bench"));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::from_gguf(model->gguf()));
  FRUGAL_ASSIGN_OR_RETURN(const double warm_s, warmup(*model, *rt.backend));
  std::printf("frugal batched-bench: %s: %s | %s, threads %d | kv %s, n_batch %lld | warm-up %.0f ms\n\n", o.model.c_str(),
              model_description(model->gguf(), model->n_params()).c_str(), isa_name(rt.isa), rt.n_threads,
              dtype_name(kv_type), (long long)o.n_batch, warm_s * 1e3);
  std::printf("|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |\n");
  std::printf("|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|\n");
  for (int64_t npp : npps) {
    for (int64_t ntg : ntgs) {
      for (int64_t npl : npls) {
        FRUGAL_ASSIGN_OR_RETURN(Row r, run_one(*model, *tok, *rt.backend, rt.pool.get(), o, kv_type, npp, ntg, npl));
        std::printf("| %5lld | %6lld | %4lld | %6lld | %8.3f | %8.2f | %8.3f | %8.2f | %8.3f | %8.2f |\n",
                    (long long)npp, (long long)ntg, (long long)npl, (long long)(npl * (npp + ntg)), r.t_pp,
                    (double)(npl * npp) / r.t_pp, r.t_tg, (double)(npl * (ntg - 1)) / r.t_tg, r.t,
                    (double)(npl * (npp + ntg)) / r.t);
        std::fflush(stdout);
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Command add_batched_bench_command(CLI::App& root) {
  auto o = std::make_shared<BatchedBenchOptions>();
  CLI::App* app = root.add_subcommand(
      "batched-bench",
      "Throughput of the continuous-batching engine with N parallel sequences (llama-batched-bench's columns)");
  app->add_option("-m,--model", o->model, "GGUF model file")->required();
  add_load_flags(app, &o->load);
  app->add_option("--npp", o->npp, "prompt tokens per sequence, comma-separated")->capture_default_str();
  app->add_option("--ntg", o->ntg, "generated tokens per sequence, comma-separated (>= 2)")->capture_default_str();
  app->add_option("--npl", o->npl, "parallel sequences, comma-separated")->capture_default_str();
  app->add_option("-t,--threads", o->threads, "threads (default: number of cores)");
  app->add_option("-b,--batch-size", o->n_batch, "max tokens per engine step")->capture_default_str();
  app->add_option("--kv-type", o->kv_type, "KV cache type: f32, f16 or q8_0")->capture_default_str();
  app->add_option("--isa", o->isa, "kernels: scalar, avx2, avx512 or auto")->capture_default_str();
  app->add_option("--seed", o->seed, "seed of the random prompts")->capture_default_str();
  return Command{app, [o] { return run(*o); }};
}

}  // namespace frugal::cli
