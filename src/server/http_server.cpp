// HttpServer setup: cpp-httplib configuration, the small routes, auth, errors and the lifecycle. The
// generation routes live in http_generate.cpp.
#include "server/http_server.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "base/rng.h"
#include "base/timer.h"
#include "server/http_server_impl.h"

namespace frugal {

namespace {

// Route label for metrics: known paths as is, anything else "other" (bounded cardinality).
std::string route_label(const std::string& path) {
  static const char* const kKnown[] = {"/v1/chat/completions", "/v1/completions", "/v1/generate", "/v1/models",
                                       "/health",              "/ready",          "/metrics"};
  for (const char* k : kKnown) {
    if (path == k) return path;
  }
  return "other";
}

}  // namespace

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.http_status;
  res.set_content(dump_json(error_json(e)) + "\n", "application/json");
}

ApiError api_error(int status, std::string type, std::string message, std::string code) {
  ApiError e;
  e.http_status = status;
  e.type = std::move(type);
  e.message = std::move(message);
  e.code = std::move(code);
  return e;
}

std::string HttpServerImpl::next_id(const char* prefix) {
  std::lock_guard<std::mutex> lock(id_mu);
  char buf[64];
  const uint64_t a = splitmix64(&id_state), b = splitmix64(&id_state);
  std::snprintf(buf, sizeof buf, "%s-%016llx%08llx", prefix, (unsigned long long)a, (unsigned long long)(b >> 32));
  return buf;
}

std::optional<ApiError> HttpServerImpl::authenticate(const httplib::Request& req, const ApiKey** key) const {
  *key = nullptr;
  if (!deps.keys || !deps.keys->enabled()) return std::nullopt;
  if (req.has_header("Authorization")) {
    *key = deps.keys->authenticate(req.get_header_value("Authorization"));
  } else if (req.has_header("x-api-key")) {
    *key = deps.keys->authenticate_key(req.get_header_value("x-api-key"));
  }
  if (*key) return std::nullopt;
  const bool given = req.has_header("Authorization") || req.has_header("x-api-key");
  return api_error(401, "invalid_request_error",
                   given ? "invalid API key" : "missing API key: send 'Authorization: Bearer <key>'", "invalid_api_key");
}

void HttpServerImpl::enter() {
  std::lock_guard<std::mutex> lock(idle_mu);
  ++in_flight;
}

void HttpServerImpl::leave() {
  std::lock_guard<std::mutex> lock(idle_mu);
  --in_flight;
  idle_cv.notify_all();
}

void HttpServerImpl::setup_routes() {
  using httplib::Request;
  using httplib::Response;
  svr.Post("/v1/chat/completions",
           [this](const Request& q, Response& r) { handle_generate(ApiRoute::kChatCompletions, q, r); });
  svr.Post("/v1/completions", [this](const Request& q, Response& r) { handle_generate(ApiRoute::kCompletions, q, r); });
  svr.Post("/v1/generate", [this](const Request& q, Response& r) { handle_generate(ApiRoute::kGenerate, q, r); });
  svr.Get("/v1/models", [this](const Request& q, Response& r) {
    const ApiKey* key = nullptr;
    if (auto e = authenticate(q, &key)) return send_error(r, *e);
    r.set_content(dump_json(build_models_response(opt.model_id, created_unix)) + "\n", "application/json");
  });
  svr.Get("/health", [](const Request&, Response& r) { r.set_content("{\"status\":\"ok\"}\n", "application/json"); });
  svr.Get("/ready", [this](const Request&, Response& r) {
    if (draining->load() || stopping.load()) {
      r.status = 503;
      r.set_content("{\"status\":\"draining\"}\n", "application/json");
    } else {
      r.set_content("{\"status\":\"ready\"}\n", "application/json");
    }
  });
  svr.Get("/metrics", [this](const Request& q, Response& r) {
    const ApiKey* key = nullptr;
    if (opt.protect_metrics) {
      if (auto e = authenticate(q, &key)) return send_error(r, *e);
    }
    r.set_content(metrics->render(), kPrometheusContentType);
  });
  // Errors cpp-httplib produces itself (404, 413, 400 on a malformed request line...) get the envelope;
  // responses that already have a body are left alone.
  svr.set_error_handler(httplib::Server::HandlerWithResponse([this](const Request&, Response& r) {
    if (!r.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    ApiError e;
    switch (r.status) {
      case 404: e = api_error(404, "invalid_request_error", "no such route", "not_found"); break;
      case 405: e = api_error(405, "invalid_request_error", "method not allowed"); break;
      case 413:
        e = api_error(413, "invalid_request_error",
                      "request body larger than " + std::to_string(opt.max_body_bytes) + " bytes (--max-body)",
                      "payload_too_large");
        break;
      default: e = api_error(r.status, r.status >= 500 ? "server_error" : "invalid_request_error", "HTTP error");
    }
    send_error(r, e);
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler([](const Request&, Response& r, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& ex) {
      what = std::string("internal error: ") + ex.what();
    } catch (...) {
    }
    send_error(r, api_error(500, "server_error", what));
  });
  svr.set_logger([this](const Request& q, const Response& r) { metrics->count_http(route_label(q.path), r.status); });
}

ChatRenderer make_chat_renderer(std::shared_ptr<const ChatTemplate> tmpl, const Tokenizer& tok) {
  const std::string bos = tok.bos() != Tokenizer::kNoToken ? tok.token_text(tok.bos()) : "";
  const std::string eos = tok.eos() != Tokenizer::kNoToken ? tok.token_text(tok.eos()) : "";
  return [tmpl, bos, eos](const nlohmann::json& messages) -> StatusOr<std::string> {
    ChatTemplateInputs in;
    // Through text: nlohmann::json has sorted the keys already; ordered_json keeps what we give it.
    in.messages = nlohmann::ordered_json::parse(messages.dump());
    in.add_generation_prompt = true;
    in.bos_token = bos;
    in.eos_token = eos;
    in.now_unix = (int64_t)std::time(nullptr);
    return tmpl->apply(in);
  };
}

HttpServer::HttpServer(HttpServerDeps deps, HttpServerOptions options) : impl_(std::make_unique<HttpServerImpl>()) {
  FRUGAL_CHECK(deps.engine != nullptr);
  impl_->deps = std::move(deps);
  impl_->opt = std::move(options);
  impl_->draining = &draining_;
  impl_->created_unix = (int64_t)std::time(nullptr);
  impl_->id_state = random_seed();
  if (impl_->deps.metrics) {
    metrics_ = impl_->deps.metrics;
  } else {
    Engine* engine = impl_->deps.engine;
    ResponseCache* cache = impl_->deps.cache;
    ServerMetricsOptions mo;
    mo.cost_per_hour_usd = impl_->opt.cost_per_hour_usd;
    std::function<CacheGaugeValues()> cache_fn;
    if (cache) {
      cache_fn = [cache] {
        const ResponseCache::Stats s = cache->stats();
        return CacheGaugeValues{s.entries, s.bytes};
      };
    }
    own_metrics_ = std::make_unique<ServerMetrics>(mo, [engine] { return engine->stats(); }, cache_fn, now_seconds);
    metrics_ = own_metrics_.get();
  }
  impl_->metrics = metrics_;
}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start(const std::string& host, int port) {
  FRUGAL_CHECK(!thread_.joinable());
  signal(SIGPIPE, SIG_IGN);
  HttpServerImpl& m = *impl_;
  const int threads = m.opt.http_threads > 0 ? m.opt.http_threads : m.deps.engine->config().max_seqs * 4 + 16;
  m.svr.new_task_queue = [threads] { return new httplib::ThreadPool((size_t)threads); };
  m.svr.set_payload_max_length(m.opt.max_body_bytes);
  m.svr.set_read_timeout(m.opt.read_timeout_s, 0);
  m.svr.set_write_timeout(m.opt.write_timeout_s, 0);
  m.svr.set_keep_alive_max_count(1000);
  m.svr.set_tcp_nodelay(true);
  m.setup_routes();
  if (port == 0) {
    port_ = m.svr.bind_to_any_port(host);
    if (port_ <= 0) return io_error("cannot listen on " + host + ": bind failed");
  } else {
    if (!m.svr.bind_to_port(host, port)) return io_error("cannot listen on " + host + ":" + std::to_string(port));
    port_ = port;
  }
  thread_ = std::thread([this] { impl_->svr.listen_after_bind(); });
  // stop() is a no-op until the listener runs: wait for it so that start(); stop(); cannot hang.
  for (int i = 0; i < 5000 && !m.svr.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!m.svr.is_running()) return io_error("listener on " + host + ":" + std::to_string(port_) + " did not start");
  return Status::Ok();
}

void HttpServer::wait() {
  if (thread_.joinable()) thread_.join();
}

void HttpServer::begin_drain() {
  if (draining_.exchange(true)) return;
  impl_->deps.engine->drain();
}

bool HttpServer::wait_idle(double timeout_s) {
  std::unique_lock<std::mutex> lock(impl_->idle_mu);
  return impl_->idle_cv.wait_for(lock, std::chrono::duration<double>(std::max(0.0, timeout_s)),
                                 [&] { return impl_->in_flight == 0; });
}

int64_t HttpServer::in_flight() const {
  std::lock_guard<std::mutex> lock(impl_->idle_mu);
  return impl_->in_flight;
}

bool HttpServer::listening() const { return impl_->svr.is_running(); }

void HttpServer::stop() {
  impl_->stopping.store(true);
  impl_->svr.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace frugal
