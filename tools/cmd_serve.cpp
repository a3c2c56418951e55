// frugal serve: the OpenAI-compatible HTTP server over one model (src/server/http_server.h).
// Prints one block describing the setup, ending with "listening on http://HOST:PORT" (the real port
// when --port 0), then serves until SIGINT/SIGTERM, which drains: /ready answers 503, no new requests,
// running ones finish (up to --drain-timeout seconds; a second signal stops at once), exit 0.
#include <pthread.h>
#include <signal.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>

#include "base/timer.h"
#include "chat/chat_template.h"
#include "cli_common.h"
#include "engine/engine.h"
#include "model/model.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/server_metrics.h"
#include "tokenizer/tokenizer.h"

namespace frugal::cli {

namespace {

struct ServeOptions {
  std::string model;
  LoadFlags load;  // --mmap/--no-mmap/--mlock
  std::string host = "127.0.0.1";
  int port = 8080;
  int threads = 0;
  std::string api_key;
  std::string api_keys_file;
  bool protect_metrics = false;
  int max_seqs = 16;
  int64_t max_batched_tokens = 512;
  int64_t ctx_size = 0;
  std::string kv_cache_mem;
  int64_t kv_cache_tokens = 0;
  std::string kv_type = "f16";
  bool no_prefix_cache = false;
  double cost_per_hour = 0;
  std::string response_cache = "off";
  double response_cache_ttl = 3600;
  int64_t response_cache_entries = 10000;
  std::string usage_db;
  std::string chat_template;
  std::string alias;
  int64_t max_body = 4 << 20;
  int64_t max_waiting = 256;
  double drain_timeout = 30;
  std::string histogram_buckets;
  std::string itl_buckets;
  int http_threads = 0;
  std::string isa = "auto";
};

// "2GiB", "512MiB", "1.5G", "800MB", "65536": K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024,
// KB/MB/GB/TB powers of 1000, a bare number is bytes.
StatusOr<uint64_t> parse_size(const std::string& option, const std::string& text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit((unsigned char)text[i]) || text[i] == '.')) ++i;
  std::string unit = text.substr(i);
  for (char& c : unit) c = (char)std::toupper((unsigned char)c);
  double v = -1;
  try {
    if (i > 0) v = std::stod(text.substr(0, i));
  } catch (const std::exception&) {
  }
  double mul = 0;
  if (unit.empty() || unit == "B") mul = 1;
  const std::string prefixes = "KMGT";
  const size_t p = unit.empty() ? std::string::npos : prefixes.find(unit[0]);
  if (p != std::string::npos) {
    const std::string rest = unit.substr(1);
    if (rest.empty() || rest == "IB") mul = std::pow(1024.0, (double)(p + 1));
    if (rest == "B") mul = std::pow(1000.0, (double)(p + 1));
  }
  if (!(v > 0) || mul == 0 || !std::isfinite(v * mul) || v * mul >= 1.8e19) {
    return invalid_argument(option + ": '" + text + "' is not a size (e.g. 2GiB, 512MiB, 800MB)");
  }
  return (uint64_t)(v * mul);
}

StatusOr<ApiKeys> load_keys(const ServeOptions& o) {
  if (!o.api_key.empty() && !o.api_keys_file.empty()) {
    return invalid_argument("give --api-key or --api-keys-file, not both");
  }
  if (!o.api_key.empty()) return ApiKeys::single(o.api_key);
  if (!o.api_keys_file.empty()) return ApiKeys::load_file(o.api_keys_file);
  return ApiKeys();
}

StatusOr<EngineConfig> engine_config(const ServeOptions& o) {
  EngineConfig c;
  c.n_ctx = o.ctx_size;
  c.max_seqs = o.max_seqs;
  c.max_batched_tokens = o.max_batched_tokens;
  c.max_waiting = o.max_waiting;
  c.prefix_caching = !o.no_prefix_cache;
  FRUGAL_ASSIGN_OR_RETURN(c.kv_type, parse_kv_type(o.kv_type));
  if (!o.kv_cache_mem.empty() && o.kv_cache_tokens > 0) {
    return invalid_argument("give --kv-cache-mem or --kv-cache-tokens, not both");
  }
  if (o.kv_cache_tokens < 0) return invalid_argument("--kv-cache-tokens must be >= 0");
  c.kv_tokens = o.kv_cache_tokens;
  if (!o.kv_cache_mem.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(c.kv_bytes, parse_size("--kv-cache-mem", o.kv_cache_mem));
  }
  return c;
}

StatusOr<ServerMetricsOptions> metrics_options(const ServeOptions& o) {
  ServerMetricsOptions m;
  m.cost_per_hour_usd = o.cost_per_hour;
  if (!o.histogram_buckets.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(m.ttft_buckets, parse_buckets("--histogram-buckets", o.histogram_buckets));
    m.e2e_buckets = m.queue_buckets = m.ttft_buckets;
  }
  if (!o.itl_buckets.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(m.itl_buckets, parse_buckets("--itl-buckets", o.itl_buckets));
  }
  return m;
}

// The model's own template, else a built-in fallback; --chat-template FILE overrides both.
StatusOr<std::shared_ptr<const ChatTemplate>> load_template(const ServeOptions& o, const Model& model,
                                                            const Tokenizer& tok, std::string* chosen) {
  if (!o.chat_template.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(std::string src, read_text_file(o.chat_template));
    StatusOr<ChatTemplate> t = ChatTemplate::parse(src);
    if (!t.ok()) return t.status().with_context(o.chat_template);
    *chosen = o.chat_template;
    return std::make_shared<const ChatTemplate>(std::move(t).value());
  }
  FRUGAL_ASSIGN_OR_RETURN(std::string src, model.gguf().get_string("tokenizer.chat_template", ""));
  auto has_token = [&tok](const std::string& text) { return tok.token_id(text) != Tokenizer::kNoToken; };
  StatusOr<ChatTemplate> t = template_for_model(src, has_token, chosen);
  if (!t.ok()) return t.status().with_context(o.model + ": tokenizer.chat_template");
  return std::make_shared<const ChatTemplate>(std::move(t).value());
}

std::string model_id_for(const ServeOptions& o) {
  if (!o.alias.empty()) return o.alias;
  std::string id = o.model.substr(o.model.find_last_of('/') + 1);
  if (id.size() > 5 && id.compare(id.size() - 5, 5, ".gguf") == 0) id.resize(id.size() - 5);
  return id;
}

// Waits for SIGINT/SIGTERM (blocked in every thread, see serve()) while the listener runs. Returns the
// signal, or 0 when the listener stopped by itself.
int wait_for_signal(const sigset_t& set, const HttpServer& server, double timeout_s) {
  const double end = now_seconds() + timeout_s;
  while (server.listening() && now_seconds() < end) {
    timespec ts{0, 200 * 1000 * 1000};
    const int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig > 0) return sig;
  }
  return 0;
}

// --response-cache and --usage-db (SQLite files; "off" / empty = none).
Status open_stores(const ServeOptions& o, std::unique_ptr<ResponseCache>* cache, std::unique_ptr<UsageLedger>* ledger) {
  if (o.response_cache != "off") {
    ResponseCache::Options co;
    co.ttl_s = o.response_cache_ttl;
    co.max_entries = o.response_cache_entries;
    FRUGAL_ASSIGN_OR_RETURN(*cache, ResponseCache::open(o.response_cache, co));
  }
  if (!o.usage_db.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(*ledger, UsageLedger::open(o.usage_db));
  }
  return Status::Ok();
}

// The startup block (stdout, flushed): model, kernels and threads, template, KV pool, limits, and the
// listening address with the real port last, so that scripts and tests can read it.
void print_banner(const ServeOptions& o, const Model& model, const Runtime& rt, const std::string& template_name,
                  const Engine& engine, const ApiKeys& keys, const std::string& model_id, int port) {
  const EngineConfig& c = engine.config();
  const size_t per_tok = engine.kv_bytes_per_token();
  std::printf("frugal serve: model %s (%s, %s params) as \"%s\"\n", o.model.c_str(),
              model_description(model.gguf(), model.n_params()).c_str(), format_count(model.n_params()).c_str(),
              model_id.c_str());
  std::printf("frugal serve: %s kernels, %d threads, chat template %s\n", isa_name(rt.isa), rt.n_threads,
              template_name.c_str());
  std::printf("frugal serve: KV pool %lld tokens (%lld blocks of %d), %zu bytes/token, %s, %s; context %lld per sequence\n",
              (long long)c.kv_tokens, (long long)(c.kv_tokens / c.block_size), c.block_size, per_tok,
              dtype_name(c.kv_type), format_bytes((uint64_t)c.kv_tokens * per_tok).c_str(), (long long)c.n_ctx);
  std::printf("frugal serve: max seqs %d, max batched tokens %lld, max waiting %lld, prefix cache %s\n", c.max_seqs,
              (long long)c.max_batched_tokens, (long long)c.max_waiting, c.prefix_caching ? "on" : "off");
  std::printf("frugal serve: api keys %s, response cache %s, usage ledger %s, cost %.4g USD/hour\n",
              keys.enabled() ? (std::to_string(keys.size()) + (o.protect_metrics ? " (metrics protected)" : "")).c_str()
                             : "off (open server)",
              o.response_cache.c_str(), o.usage_db.empty() ? "off" : o.usage_db.c_str(), o.cost_per_hour);
  std::printf("frugal serve: listening on http://%s:%d\n", o.host.c_str(), port);
  std::fflush(stdout);
}

// SIGINT/SIGTERM: /ready 503 and no new requests, running ones finish within --drain-timeout (a second
// signal cuts it short), then the listener and the engine stop.
void drain_and_stop(const ServeOptions& o, int sig, const sigset_t& sigs, HttpServer& server, Engine& engine) {
  std::fprintf(stderr, "frugal serve: %s: draining (%lld in flight, up to %.0f s; signal again to stop now)\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM", (long long)server.in_flight(), o.drain_timeout);
  server.begin_drain();
  const double end = now_seconds() + o.drain_timeout;
  bool idle = false;
  while (!(idle = server.wait_idle(0.2)) && now_seconds() < end) {
    timespec ts{0, 0};
    if (sigtimedwait(&sigs, nullptr, &ts) > 0) break;
  }
  const int64_t left = server.in_flight();
  server.stop();
  engine.stop();
  std::fprintf(stderr, "frugal serve: stopped%s\n", idle ? "" : (" (" + std::to_string(left) + " requests cancelled)").c_str());
}

Status serve(const ServeOptions& o) {
  if (o.port < 0 || o.port > 65535) return invalid_argument("--port must be in 0..65535");
  if (o.max_body <= 0) return invalid_argument("--max-body must be > 0");
  if (o.drain_timeout < 0) return invalid_argument("--drain-timeout must be >= 0");
  if (o.cost_per_hour < 0) return invalid_argument("--cost-per-hour must be >= 0");
  FRUGAL_ASSIGN_OR_RETURN(EngineConfig ec, engine_config(o));
  FRUGAL_ASSIGN_OR_RETURN(ServerMetricsOptions mo, metrics_options(o));
  FRUGAL_ASSIGN_OR_RETURN(ApiKeys keys, load_keys(o));

  // Signals go to the waiting loop below, never to a worker thread: block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  FRUGAL_ASSIGN_OR_RETURN(Runtime rt, make_runtime(o.threads, o.isa, o.load.repack_limit()));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, load_model(o.model, o.load, rt.pool.get(), "frugal serve"));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::from_gguf(model->gguf()));
  std::string template_name;
  FRUGAL_ASSIGN_OR_RETURN(std::shared_ptr<const ChatTemplate> tmpl, load_template(o, *model, *tok, &template_name));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::create(*model, *tok, *rt.backend, ec, rt.pool.get()));
  FRUGAL_ASSIGN_OR_RETURN(const double warm_s, warmup(*model, *rt.backend));
  std::printf("frugal serve: warm-up forward %.0f ms (weights paged in)\n", warm_s * 1e3);

  std::unique_ptr<ResponseCache> cache;
  std::unique_ptr<UsageLedger> ledger;
  FRUGAL_RETURN_IF_ERROR(open_stores(o, &cache, &ledger));
  ResponseCache* cache_ptr = cache.get();
  Engine* engine_ptr = engine.get();
  std::function<CacheGaugeValues()> cache_fn;
  if (cache_ptr) {
    cache_fn = [cache_ptr] {
      const ResponseCache::Stats s = cache_ptr->stats();
      return CacheGaugeValues{s.entries, s.bytes};
    };
  }
  ServerMetrics metrics(mo, [engine_ptr] { return engine_ptr->stats(); }, cache_fn, now_seconds);
  metrics.set_moe_stats(model->moe_stats());

  HttpServerOptions ho;
  ho.model_id = model_id_for(o);
  ho.max_body_bytes = (size_t)o.max_body;
  ho.http_threads = o.http_threads;
  ho.protect_metrics = o.protect_metrics;
  ho.cost_per_hour_usd = o.cost_per_hour;
  ho.chat_template_name = template_name;
  HttpServerDeps deps;
  deps.engine = engine.get();
  deps.render_chat = make_chat_renderer(tmpl, *tok);
  deps.keys = &keys;
  deps.cache = cache.get();
  deps.ledger = ledger.get();
  deps.metrics = &metrics;
  engine->start();
  HttpServer server(deps, ho);
  FRUGAL_RETURN_IF_ERROR(server.start(o.host, o.port));

  print_banner(o, *model, rt, template_name, *engine, keys, ho.model_id, server.port());

  const int sig = wait_for_signal(sigs, server, 1e18);
  if (sig == 0) {
    engine->stop();
    return io_error("the HTTP listener on " + o.host + ":" + std::to_string(server.port()) + " stopped");
  }
  drain_and_stop(o, sig, sigs, server, *engine);
  if (ledger) (void)ledger->flush();
  return Status::Ok();
}

}  // namespace

Command add_serve_command(CLI::App& root) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* app = root.add_subcommand("serve", "OpenAI-compatible HTTP server (continuous batching, SSE, keys, metrics)");
  app->add_option("-m,--model", o->model, "GGUF model file")->required();
  add_load_flags(app, &o->load);
  app->add_option("--host", o->host, "address to listen on")->capture_default_str();
  app->add_option("--port", o->port, "port (0: any free port; the banner says which)")->capture_default_str();
  app->add_option("-t,--threads", o->threads, "compute threads (default: number of cores)");
  app->add_option("--api-key", o->api_key, "require 'Authorization: Bearer KEY'");
  app->add_option("--api-keys-file", o->api_keys_file,
                  "keys, one a line: KEY [name=NAME] [rpm=N] [tpm=N] [concurrent=N] ('#' comments)");
  app->add_flag("--protect-metrics", o->protect_metrics, "/metrics needs a key too");
  app->add_option("--max-seqs", o->max_seqs, "sequences generated at once")->capture_default_str();
  app->add_option("--max-batched-tokens", o->max_batched_tokens, "tokens per engine step (prompt chunks + decode)")
      ->capture_default_str();
  app->add_option("-c,--ctx-size", o->ctx_size, "context per sequence in tokens (0: the model's, within the KV pool)")
      ->capture_default_str();
  app->add_option("--kv-cache-mem", o->kv_cache_mem, "KV pool size, e.g. 2GiB (default: max-seqs full contexts, <= 2 GiB)");
  app->add_option("--kv-cache-tokens", o->kv_cache_tokens, "KV pool size in tokens (instead of --kv-cache-mem)");
  app->add_option("--kv-cache-type", o->kv_type, "KV cache type: f16, f32 or q8_0")->capture_default_str();
  app->add_flag("--no-prefix-cache", o->no_prefix_cache, "do not reuse KV blocks of identical prompt prefixes");
  app->add_option("--cost-per-hour", o->cost_per_hour, "what the machine costs, USD/hour (usage.cost_usd, metrics)")
      ->capture_default_str();
  app->add_option("--response-cache", o->response_cache,
                  "SQLite file caching whole responses of deterministic requests, ':memory:', or off")
      ->capture_default_str();
  app->add_option("--response-cache-ttl", o->response_cache_ttl, "seconds a cached response lives")->capture_default_str();
  app->add_option("--response-cache-entries", o->response_cache_entries, "most cached responses kept")
      ->capture_default_str();
  app->add_option("--usage-db", o->usage_db, "SQLite file recording usage per API key (read with `frugal usage`)");
  app->add_option("--chat-template", o->chat_template, "Jinja chat template file (overrides the model's)");
  app->add_option("--alias", o->alias, "model id for the API (default: the file name without .gguf)");
  app->add_option("--max-body", o->max_body, "largest request body in bytes (413 beyond)")->capture_default_str();
  app->add_option("--max-waiting", o->max_waiting, "queued requests beyond this get 503")->capture_default_str();
  app->add_option("--drain-timeout", o->drain_timeout, "seconds SIGTERM waits for running requests")
      ->capture_default_str();
  app->add_option("--histogram-buckets", o->histogram_buckets,
                  "latency histogram buckets in seconds for TTFT, e2e and queue time, e.g. 0.05,0.1,0.5,1,5");
  app->add_option("--itl-buckets", o->itl_buckets, "inter-token latency histogram buckets in seconds");
  app->add_option("--http-threads", o->http_threads, "HTTP worker threads (0: max-seqs x 4 + 16)")
      ->capture_default_str();
  app->add_option("--isa", o->isa, "kernels: scalar, avx2, avx512 or auto")->capture_default_str();
  return Command{app, [o] { return serve(*o); }};
}

}  // namespace frugal::cli
