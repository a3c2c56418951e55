// The generation routes of HttpServer (see http_server.h for the request's path through them).
#include <cmath>
#include <cstdio>

#include "base/timer.h"
#include "server/connection_probe.h"
#include "server/http_server_impl.h"
#include "server/sqlite_db.h"
#include "server/sse.h"

namespace frugal {

using nlohmann::json;

namespace {

const char* finish_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "error";
}

struct Choice {
  std::string text;
  std::vector<TokenLogprob> logprobs;
  bool done = false;
  FinishReason finish = FinishReason::kStop;
  Status error;
  RequestUsage usage;
};

enum class PumpEnd { kDone, kClientGone, kStopping };
enum class CacheUse { kBypass, kMiss, kHit };

// One generation request from admission to its last byte. Shared by the handler and, for streams, the
// content provider; the destructor (or finalize()) settles the accounts exactly once.
struct Job {
  Job(HttpServerImpl& s, ApiRoute r, const httplib::Request& q)
      : srv(s), route(r), probe(q.local_port, q.remote_port), start_s(now_seconds()) {}
  ~Job() { finalize(); }

  HttpServerImpl& srv;
  ApiRoute route;
  ParsedRequest req;
  ResponseMeta meta;
  const ApiKey* key = nullptr;
  bool admitted = false;
  uint64_t ticket = 0;
  bool entered = false;
  int64_t prompt_len = 0;
  std::vector<std::shared_ptr<RequestStream>> streams;
  std::vector<Choice> choices;
  std::string cache_key;
  CacheUse cache = CacheUse::kBypass;
  int64_t cached_completion_tokens = 0;  // a hit's completion tokens
  int http_status = 200;
  bool client_gone = false;
  ConnectionProbe probe;
  double start_s;
  bool finalized = false;

  void apply(size_t i, GenerationEvent& ev);
  PumpEnd pump(const std::function<bool(size_t, const GenerationEvent&)>& on_event);
  UsageInfo usage() const;
  void finalize();
};

void Job::apply(size_t i, GenerationEvent& ev) {
  Choice& c = choices[i];
  c.text += ev.text;
  for (const TokenLogprob& t : ev.logprobs) c.logprobs.push_back(t);
  if (ev.done) {
    c.done = true;
    c.finish = ev.finish;
    c.error = ev.error;
    c.usage = ev.usage;
  }
}

// Reads events of every choice until all are done, the client is gone or the server stops. on_event
// (may be empty) sees each event after apply(); returning false means the client is gone.
PumpEnd Job::pump(const std::function<bool(size_t, const GenerationEvent&)>& on_event) {
  const double poll_s = (double)srv.opt.poll_ms * 1e-3;
  double last_probe = now_seconds();
  GenerationEvent ev;
  while (true) {
    bool any = false, all_done = true;
    size_t first_open = choices.size();
    for (size_t i = 0; i < choices.size(); ++i) {
      while (!choices[i].done && streams[i]->next(&ev, 0)) {
        any = true;
        apply(i, ev);
        if (on_event && !on_event(i, ev)) return PumpEnd::kClientGone;
      }
      if (!choices[i].done) {
        all_done = false;
        if (first_open == choices.size()) first_open = i;
      }
    }
    if (all_done) return PumpEnd::kDone;
    if (srv.stopping.load()) return PumpEnd::kStopping;
    const double now = now_seconds();
    if (!any || now - last_probe >= poll_s) {
      last_probe = now;
      if (probe.peer_closed()) return PumpEnd::kClientGone;
    }
    if (!any && streams[first_open]->next(&ev, srv.opt.poll_ms)) {
      apply(first_open, ev);
      if (on_event && !on_event(first_open, ev)) return PumpEnd::kClientGone;
    }
  }
}

UsageInfo Job::usage() const {
  UsageInfo u;
  if (cache == CacheUse::kHit) {
    u.prompt_tokens = prompt_len;
    u.completion_tokens = cached_completion_tokens;
    u.cache_hit = true;
    return u;
  }
  double engine_s = 0;
  for (size_t i = 0; i < choices.size(); ++i) {
    const RequestUsage& r = choices[i].usage;
    if (i == 0) {  // the prompt is shared by the n choices: counted once
      u.prompt_tokens = r.prompt_tokens > 0 ? r.prompt_tokens : prompt_len;
      u.cached_tokens = r.cached_tokens;
    }
    u.completion_tokens += r.completion_tokens;
    engine_s += r.engine_s;
  }
  u.cost_usd = engine_s * srv.opt.cost_per_hour_usd / 3600.0;
  return u;
}

void Job::finalize() {
  if (finalized) return;
  finalized = true;
  // Cancel what still runs, then give the engine a moment to report the cancelled sequences' usage
  // (their tokens were computed and are billed).
  for (size_t i = 0; i < streams.size(); ++i) {
    if (!choices[i].done) streams[i]->cancel();
  }
  const double deadline = now_seconds() + 1.0;
  GenerationEvent ev;
  for (size_t i = 0; i < streams.size(); ++i) {
    while (!choices[i].done && now_seconds() < deadline) {
      if (streams[i]->next(&ev, 20)) apply(i, ev);
    }
  }
  const UsageInfo u = usage();
  if (cache != CacheUse::kHit) {
    const double share = choices.empty() ? 0.0 : u.cost_usd / (double)choices.size();
    for (const Choice& c : choices) {
      if (c.done) srv.metrics->observe_request(c.usage, share);
    }
  }
  const double now = now_seconds();
  if (admitted && key) {
    const int64_t actual = u.cache_hit ? 0 : u.prompt_tokens * (int64_t)choices.size() + u.completion_tokens;
    srv.limiter.finish(*key, ticket, actual, now);
  }
  if (srv.deps.ledger && admitted) {
    UsageRecord r;
    r.key_name = key ? key->name : "";
    r.time_s = unix_seconds();
    r.route = api_route_path(route);
    r.status = client_gone ? 499 : http_status;
    r.prompt_tokens = u.prompt_tokens;
    r.cached_tokens = u.cached_tokens;
    r.completion_tokens = u.completion_tokens;
    r.cost_usd = u.cost_usd;
    r.finish_reason = client_gone ? "cancelled" : choices.empty() ? "" : finish_name(choices[0].finish);
    r.cache_hit = u.cache_hit;
    srv.deps.ledger->record(std::move(r));
  }
  if (entered) srv.leave();
}

LogprobToken convert_logprob(const TokenLogprob& t, const Tokenizer& tok) {
  LogprobToken out;
  out.token = t.text;
  out.logprob = t.logprob;
  for (const auto& [id, lp] : t.top) out.top.emplace_back(tok.token_to_piece(id), lp);
  return out;
}

std::vector<ChoiceResult> choice_results(const Job& job, const Tokenizer& tok) {
  std::vector<ChoiceResult> out;
  for (const Choice& c : job.choices) {
    ChoiceResult r;
    r.text = c.text;
    r.finish_reason = finish_name(c.finish);
    r.has_logprobs = job.req.top_logprobs >= 0;
    for (const TokenLogprob& t : c.logprobs) r.logprobs.push_back(convert_logprob(t, tok));
    out.push_back(std::move(r));
  }
  return out;
}

// --- response cache payload: the choices, token strings as hex (they may be partial UTF-8) ---

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string unhex(const std::string& s) {
  auto v = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string out;
  for (size_t i = 0; i + 1 < s.size(); i += 2) out += (char)(v(s[i]) * 16 + v(s[i + 1]));
  return out;
}

std::string encode_choices(const std::vector<ChoiceResult>& cs) {
  json arr = json::array();
  for (const ChoiceResult& c : cs) {
    json lps = nullptr;
    if (c.has_logprobs) {
      lps = json::array();
      for (const LogprobToken& t : c.logprobs) {
        json top = json::array();
        for (const auto& [s, lp] : t.top) top.push_back({hex(s), lp});
        lps.push_back({{"t", hex(t.token)}, {"lp", t.logprob}, {"top", top}});
      }
    }
    arr.push_back({{"text", c.text}, {"finish_reason", c.finish_reason}, {"logprobs", lps}});
  }
  return dump_json(json{{"choices", arr}});
}

bool decode_choices(const std::string& payload, std::vector<ChoiceResult>* out) {
  try {
    const json j = json::parse(payload);
    for (const json& c : j.at("choices")) {
      ChoiceResult r;
      r.text = c.at("text").get<std::string>();
      r.finish_reason = c.at("finish_reason").get<std::string>();
      if (!c.at("logprobs").is_null()) {
        r.has_logprobs = true;
        for (const json& t : c.at("logprobs")) {
          LogprobToken lt;
          lt.token = unhex(t.at("t").get<std::string>());
          lt.logprob = t.at("lp").get<float>();
          for (const json& a : t.at("top")) lt.top.emplace_back(unhex(a.at(0).get<std::string>()), a.at(1).get<float>());
          r.logprobs.push_back(std::move(lt));
        }
      }
      out->push_back(std::move(r));
    }
    return !out->empty();
  } catch (const json::exception&) {
    return false;
  }
}

ApiError submit_error(ApiRoute route, const Status& s) {
  const char* prompt_field = route == ApiRoute::kChatCompletions ? "messages" : "prompt";
  switch (s.code()) {
    case StatusCode::kInvalidArgument: return invalid_request(s.message(), prompt_field);
    case StatusCode::kOutOfRange: return invalid_request(s.message(), prompt_field, "context_length_exceeded");
    case StatusCode::kUnavailable: return api_error(503, "server_error", s.message(), "overloaded");
    default: return api_error(500, "server_error", s.message());
  }
}

bool wants_no_cache(const httplib::Request& q) {
  const std::string cc = q.get_header_value("Cache-Control");
  return cc.find("no-cache") != std::string::npos || cc.find("no-store") != std::string::npos;
}

std::string chunk(ApiRoute route, const ResponseMeta& meta, const StreamDelta& d, bool include_usage) {
  return sse_data(dump_json(build_stream_chunk(route, meta, d, include_usage)));
}

}  // namespace

// Declared here, defined below: the two halves of handle_generate.
namespace {
bool prepare(HttpServerImpl& srv, Job& job, const httplib::Request& q, httplib::Response& res, std::string* rendered,
             std::vector<int32_t>* tokens);
void serve_cache_hit(Job& job, const std::vector<ChoiceResult>& cs, httplib::Response& res);
void serve_stream(std::shared_ptr<Job> job, httplib::Response& res);
void serve_whole(Job& job, httplib::Response& res);
}  // namespace

void HttpServerImpl::handle_generate(ApiRoute route, const httplib::Request& q, httplib::Response& res) {
  auto job = std::make_shared<Job>(*this, route, q);
  std::string rendered;
  std::vector<int32_t> tokens;
  if (!prepare(*this, *job, q, res, &rendered, &tokens)) return;

  // Response cache.
  if (deps.cache && !wants_no_cache(q) && (job->req.deterministic() || job->req.cache_opt_in)) {
    job->cache_key = cache_key({opt.model_id, std::to_string(opt.cache_salt), opt.chat_template_name,
                                cache_key_material(job->req, opt.model_id, rendered)});
    if (std::optional<CachedResponse> hit = deps.cache->get(job->cache_key, unix_seconds())) {
      std::vector<ChoiceResult> cs;
      if (decode_choices(hit->payload_json, &cs) && (int)cs.size() == job->req.n) {
        job->cache = CacheUse::kHit;
        job->cached_completion_tokens = hit->completion_tokens;
        metrics->count_cache(ServerMetrics::CacheResult::kHit);
        enter();
        job->entered = true;
        return serve_cache_hit(*job, cs, res);
      }
    }
    job->cache = CacheUse::kMiss;
    metrics->count_cache(ServerMetrics::CacheResult::kMiss);
  } else {
    metrics->count_cache(ServerMetrics::CacheResult::kBypass);
  }

  // Submit the n choices.
  for (int i = 0; i < job->req.n; ++i) {
    GenerateRequest g;
    g.prompt = tokens;
    g.sampling = job->req.sampling;
    g.sampling.seed = job->req.seed_given ? job->req.sampling.seed + (uint64_t)i : random_seed();
    g.max_tokens = job->req.max_tokens;
    g.stop = job->req.stop;
    g.ignore_eos = job->req.ignore_eos;
    g.top_logprobs = job->req.top_logprobs;
    g.cache_salt = opt.cache_salt;
    StatusOr<std::shared_ptr<RequestStream>> s = deps.engine->submit(std::move(g));
    if (!s.ok()) {
      const ApiError e = submit_error(route, s.status());
      job->http_status = e.http_status;
      if (e.http_status == 503) res.set_header("Retry-After", "1");
      job->choices.resize(job->streams.size());
      return send_error(res, e);
    }
    job->streams.push_back(std::move(s).value());
  }
  job->choices.resize(job->streams.size());
  // In flight from here (wait_idle() waits for it): a request refused above never counted.
  enter();
  job->entered = true;
  if (job->req.stream) return serve_stream(job, res);
  serve_whole(*job, res);
}

namespace {

// Auth, drain check, parsing, prompt, rate limit. On failure the error is sent and false returned.
bool prepare(HttpServerImpl& srv, Job& job, const httplib::Request& q, httplib::Response& res, std::string* rendered,
             std::vector<int32_t>* tokens) {
  if (auto e = srv.authenticate(q, &job.key)) return send_error(res, *e), false;
  if (srv.draining->load() || srv.stopping.load()) {
    return send_error(res, api_error(503, "server_error", "the server is draining: not accepting requests",
                                     "draining")),
           false;
  }
  if (auto e = parse_request(job.route, q.body, &job.req)) return send_error(res, *e), false;
  const Tokenizer& tok = srv.deps.engine->tokenizer();
  if (job.route == ApiRoute::kChatCompletions) {
    if (!srv.deps.render_chat) return send_error(res, api_error(500, "server_error", "no chat template")), false;
    StatusOr<std::string> text = srv.deps.render_chat(job.req.messages);
    if (!text.ok()) return send_error(res, invalid_request("chat template: " + text.status().message(), "messages")), false;
    *rendered = std::move(text).value();
    const std::string bos = tok.bos() != Tokenizer::kNoToken ? tok.token_text(tok.bos()) : "";
    // Templates usually write the BOS text themselves: then no second BOS token.
    *tokens = tok.encode(*rendered, /*add_special=*/!starts_with_bos(*rendered, bos), /*parse_special=*/true);
  } else if (!job.req.prompt_tokens.empty()) {
    *tokens = job.req.prompt_tokens;
  } else {
    *rendered = job.req.prompt;
    *tokens = tok.encode(*rendered, /*add_special=*/true, /*parse_special=*/true);
  }
  if (tokens->empty()) return send_error(res, invalid_request("the prompt is empty", "prompt")), false;
  job.prompt_len = (int64_t)tokens->size();

  const bool chat = job.route == ApiRoute::kChatCompletions;
  job.meta = ResponseMeta{srv.next_id(chat ? "chatcmpl" : "cmpl"), (int64_t)unix_seconds(), srv.opt.model_id};
  if (job.key) {
    // Estimate: the prompt for each choice plus max_tokens when given (finish() corrects it).
    const int64_t est = job.prompt_len * job.req.n + (job.req.max_tokens > 0 ? job.req.max_tokens * job.req.n : 0);
    const RateLimiter::Decision d = srv.limiter.admit(*job.key, est, now_seconds());
    if (!d.allowed) {
      res.set_header("Retry-After", std::to_string((int64_t)std::max(1.0, std::ceil(d.retry_after_s))));
      ApiError e = api_error(429, "rate_limit_error", d.reason, "rate_limit_exceeded");
      return send_error(res, e), false;
    }
    job.admitted = true;
    job.ticket = d.ticket;
  } else {
    job.admitted = true;  // open server: nothing to release, but the ledger still records
  }
  return true;
}

void store_in_cache(Job& job, const std::vector<ChoiceResult>& cs) {
  if (job.cache != CacheUse::kMiss || !job.srv.deps.cache || cs.empty()) return;
  for (const Choice& c : job.choices) {
    if (c.finish != FinishReason::kStop && c.finish != FinishReason::kLength) return;
  }
  const UsageInfo u = job.usage();
  CachedResponse v;
  v.text = cs[0].text;
  v.finish_reason = cs[0].finish_reason;
  v.prompt_tokens = u.prompt_tokens;
  v.completion_tokens = u.completion_tokens;
  v.payload_json = encode_choices(cs);
  (void)job.srv.deps.cache->put(job.cache_key, v, unix_seconds());  // a failed put only costs a later miss
}

void serve_whole(Job& job, httplib::Response& res) {
  res.set_header("X-Frugal-Cache", job.cache == CacheUse::kMiss ? "miss" : "bypass");
  const PumpEnd end = job.pump(nullptr);
  if (end != PumpEnd::kDone) {
    job.client_gone = end == PumpEnd::kClientGone;
    job.http_status = 503;
    return send_error(res, api_error(503, "server_error", job.client_gone ? "client closed the connection"
                                                                          : "the server is shutting down"));
  }
  for (const Choice& c : job.choices) {
    if (c.finish == FinishReason::kError) {
      job.http_status = 500;
      return send_error(res, api_error(500, "server_error", "generation failed: " + c.error.message()));
    }
  }
  const std::vector<ChoiceResult> cs = choice_results(job, job.srv.deps.engine->tokenizer());
  store_in_cache(job, cs);
  res.set_content(dump_json(build_response(job.route, job.meta, cs, job.usage())) + "\n", "application/json");
}

void serve_cache_hit(Job& job, const std::vector<ChoiceResult>& cs, httplib::Response& res) {
  res.set_header("X-Frugal-Cache", "hit");
  job.choices.resize(cs.size());
  for (size_t i = 0; i < cs.size(); ++i) job.choices[i].done = true;
  if (!job.req.stream) {
    res.set_content(dump_json(build_response(job.route, job.meta, cs, job.usage())) + "\n", "application/json");
    return;
  }
  std::string body;
  const bool chat = job.route == ApiRoute::kChatCompletions;
  for (size_t i = 0; i < cs.size(); ++i) {
    StreamDelta d;
    d.index = (int)i;
    if (chat) {
      d.role = true;
      body += chunk(job.route, job.meta, d, job.req.include_usage);
      d.role = false;
    }
    d.text = cs[i].text;
    d.has_logprobs = cs[i].has_logprobs;
    d.logprobs = cs[i].logprobs;
    body += chunk(job.route, job.meta, d, job.req.include_usage);
    StreamDelta fin;
    fin.index = (int)i;
    fin.finish_reason = cs[i].finish_reason;
    body += chunk(job.route, job.meta, fin, job.req.include_usage);
  }
  if (job.req.include_usage) body += sse_data(dump_json(build_usage_chunk(job.route, job.meta, job.usage())));
  body += sse_done();
  res.set_header("Cache-Control", "no-cache");
  res.set_content(body, "text/event-stream");
}

// Writes the whole stream from inside one provider call. Returns false when the connection must be
// dropped (client gone, server stopping).
bool write_stream(Job& job, httplib::DataSink& sink) {
  auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
  const bool chat = job.route == ApiRoute::kChatCompletions;
  const bool include_usage = job.req.include_usage;
  const Tokenizer& tok = job.srv.deps.engine->tokenizer();
  if (chat) {
    for (size_t i = 0; i < job.choices.size(); ++i) {
      StreamDelta d;
      d.index = (int)i;
      d.role = true;
      if (!write(chunk(job.route, job.meta, d, include_usage))) return job.client_gone = true, false;
    }
  }
  const PumpEnd end = job.pump([&](size_t i, const GenerationEvent& ev) {
    if (ev.done && ev.finish == FinishReason::kError) {
      return write(sse_data(dump_json(error_json(api_error(500, "server_error", "generation failed: " + ev.error.message())))));
    }
    StreamDelta d;
    d.index = (int)i;
    d.text = ev.text;
    d.has_logprobs = job.req.top_logprobs >= 0;
    for (const TokenLogprob& t : ev.logprobs) d.logprobs.push_back(convert_logprob(t, tok));
    if ((!d.text.empty() || !d.logprobs.empty()) && !write(chunk(job.route, job.meta, d, include_usage))) return false;
    if (!ev.done) return true;
    StreamDelta fin;
    fin.index = (int)i;
    fin.finish_reason = finish_name(ev.finish);
    return write(chunk(job.route, job.meta, fin, include_usage));
  });
  if (end != PumpEnd::kDone) {
    job.client_gone = end == PumpEnd::kClientGone;
    return false;
  }
  store_in_cache(job, choice_results(job, tok));
  if (include_usage && !write(sse_data(dump_json(build_usage_chunk(job.route, job.meta, job.usage()))))) {
    return job.client_gone = true, false;
  }
  if (!write(sse_done())) return job.client_gone = true, false;
  sink.done();
  return true;
}

void serve_stream(std::shared_ptr<Job> job, httplib::Response& res) {
  res.set_header("X-Frugal-Cache", job->cache == CacheUse::kMiss ? "miss" : "bypass");
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [job](size_t, httplib::DataSink& sink) { return write_stream(*job, sink); },
      [job](bool) { job->finalize(); });
}

}  // namespace

}  // namespace frugal
