// HttpServer: the OpenAI-compatible HTTP front of one Engine (cpp-httplib 0.11 underneath).
//
//   POST /v1/chat/completions, /v1/completions, /v1/generate   generation (JSON or SSE when "stream")
//   GET  /v1/models                                             the one model, under options.model_id
//   GET  /health                                                200 while the process lives
//   GET  /ready                                                 200 when serving, 503 once draining
//   GET  /metrics                                               Prometheus text (key-protected if asked)
//
// A generation request: auth (Bearer key, when keys are configured) -> parse (openai_api.h) -> prompt
// (chat: render_chat(messages), tokenized with special tokens parsed and no second BOS) -> per-key rate
// limit (429 + Retry-After) -> response cache (deterministic requests only, unless opted in;
// "Cache-Control: no-cache" bypasses; header X-Frugal-Cache: hit|miss|bypass) -> engine.submit() n times
// (seeds seed+i when a seed was given) -> events merged into one response or streamed as SSE chunks ->
// usage (cost = engine_s x cost_per_hour / 3600) -> ledger row, metrics, rate-limiter correction.
//
// Errors always use the OpenAI envelope: 400 bad input (prompt too long names both numbers), 401 bad
// key, 404 unknown route, 413 body over max_body_bytes, 429 per-key limit (Retry-After), 503 queue full
// or draining, 500 engine failure.
//
// Client disconnects: a streaming request is cancelled as soon as a write fails; while no token flows
// (queued, long prefill), and for non-streaming requests, the connection is polled for a peer close
// (POLLRDHUP), so a gone client stops its sequence and the engine frees its KV blocks at once.
//
// Lifecycle: start() binds and serves on background threads; begin_drain() makes /ready answer 503 and
// new generation requests 503 and drains the engine; wait_idle() waits for in-flight generation requests;
// stop() closes the listener and joins (streams still open are cancelled). Thread-safety: start/stop/
// wait from one controlling thread; begin_drain(), port(), in_flight() from any thread. Borrowed objects
// (engine, keys, cache, ledger) must outlive the HttpServer. start() ignores SIGPIPE process-wide
// (a write to a closed socket must fail, not kill the process).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "engine/engine.h"
#include "chat/chat_template.h"
#include "server/auth.h"
#include "server/rate_limiter.h"
#include "server/response_cache.h"
#include "server/server_metrics.h"
#include "server/usage_ledger.h"

namespace frugal {

// Renders chat messages ([{"role","content"}...], content already a string) into the prompt text with
// the generation prompt appended. Must be thread-safe.
using ChatRenderer = std::function<StatusOr<std::string>(const nlohmann::json& messages)>;

// A ChatRenderer over a chat template, with the tokenizer's BOS/EOS texts and the current time
// (strftime_now) as inputs. The template is shared (apply() is thread-safe); `tok` must outlive it.
ChatRenderer make_chat_renderer(std::shared_ptr<const ChatTemplate> tmpl, const Tokenizer& tok);

struct HttpServerOptions {
  std::string model_id = "frugal";     // what /v1/models lists and responses carry in "model"
  size_t max_body_bytes = 4u << 20;    // larger bodies -> 413
  int http_threads = 0;                // 0: engine max_seqs * 4 + 16 (streams hold a thread each)
  int read_timeout_s = 30;             // request read / response write timeouts
  int write_timeout_s = 30;
  bool protect_metrics = false;        // /metrics needs a key too (when keys are configured)
  double cost_per_hour_usd = 0;
  uint64_t cache_salt = 0;             // prefix-cache and response-cache separation (adapter/tenant)
  std::string chat_template_name;      // for the cache key (a different template renders differently)
  int64_t poll_ms = 20;                // how often a waiting handler looks at its connection
};

struct HttpServerDeps {
  Engine* engine = nullptr;                 // required
  ChatRenderer render_chat;                 // required for /v1/chat/completions
  const ApiKeys* keys = nullptr;            // null or empty: open server
  ResponseCache* cache = nullptr;           // null: response cache off
  UsageLedger* ledger = nullptr;            // null: no ledger
  ServerMetrics* metrics = nullptr;         // null: the server makes its own
};

struct HttpServerImpl;  // http_server_impl.h

class HttpServer {
 public:
  HttpServer(HttpServerDeps deps, HttpServerOptions options);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (0 = an ephemeral port) and starts serving on a background thread. Errors name the
  // address.
  Status start(const std::string& host, int port);
  int port() const { return port_; }
  // Blocks until stop() (from another thread) or a listener failure.
  void wait();
  // /ready -> 503, new generation requests -> 503, engine.drain(). Idempotent.
  void begin_drain();
  bool draining() const { return draining_.load(); }
  // Waits until no generation request is in flight, at most timeout_s. True when idle.
  bool wait_idle(double timeout_s);
  int64_t in_flight() const;
  // True while the listener runs (false after stop() or a listener failure).
  bool listening() const;
  // Stops listening and joins the server thread; open streams see the shutdown and are cancelled.
  void stop();

  ServerMetrics& metrics() { return *metrics_; }

 private:
  std::unique_ptr<HttpServerImpl> impl_;
  ServerMetrics* metrics_ = nullptr;
  std::unique_ptr<ServerMetrics> own_metrics_;
  std::thread thread_;
  std::atomic<bool> draining_{false};
  int port_ = 0;
};

}  // namespace frugal
