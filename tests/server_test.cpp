// Loopback HTTP tests of `frugal serve`'s server: an in-process HttpServer on port 0 over a real Engine
// (stories260K), driven with cpp-httplib's client. Where a test needs to control timing (queue full,
// client disconnects, drain) the engine runs without its thread and the test steps it.
#include "server/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "base/thread_pool.h"
#include "base/timer.h"
#include "server/sse.h"

namespace frugal {
namespace {

using nlohmann::json;

const std::string kStories = std::string(FRUGAL_SHARED_DIR) + "/models/stories260K.gguf";
const std::string kLongPrompt =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her "
    "friends. One day, she saw a big red ball under a tree.";

struct ServerSetup {
  EngineConfig engine;
  HttpServerOptions http;
  bool start_engine = true;
  std::string api_keys;  // key file text ("" = open server)
  bool cache = false;
  bool ledger = false;
};

ServerSetup default_setup() {
  ServerSetup s;
  s.engine.n_ctx = 256;
  s.engine.kv_tokens = 2048;
  s.engine.max_seqs = 8;
  s.http.model_id = "stories";
  s.http.cost_per_hour_usd = 3.6;
  s.http.max_body_bytes = 64 * 1024;
  s.http.http_threads = 16;
  return s;
}

// Renders messages as "role: content" lines and an open assistant turn (the test does not depend on
// the chat helper's templates).
StatusOr<std::string> plain_chat(const json& messages) {
  std::string out;
  for (const json& m : messages) out += m["role"].get<std::string>() + ": " + m["content"].get<std::string>() + "\n";
  return out + "assistant:";
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = Model::load(kStories);
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(m).value().release();
    auto t = Tokenizer::from_gguf(model_->gguf());
    ASSERT_TRUE(t.ok()) << t.status().message();
    tok_ = std::move(t).value().release();
    pool_ = new ThreadPool(1);
    backend_ = make_cpu_backend(pool_, detect_isa()).release();
  }

  void start(const ServerSetup& s) {
    auto e = Engine::create(*model_, *tok_, *backend_, s.engine);
    ASSERT_TRUE(e.ok()) << e.status().message();
    engine_ = std::move(e).value();
    if (s.start_engine) engine_->start();
    if (!s.api_keys.empty()) {
      auto k = ApiKeys::parse(s.api_keys, "keys");
      ASSERT_TRUE(k.ok()) << k.status().message();
      keys_ = std::move(k).value();
    }
    if (s.cache) {
      auto c = ResponseCache::open(":memory:", ResponseCache::Options{});
      ASSERT_TRUE(c.ok()) << c.status().message();
      cache_ = std::move(c).value();
    }
    if (s.ledger) {
      auto l = UsageLedger::open(":memory:");
      ASSERT_TRUE(l.ok()) << l.status().message();
      ledger_ = std::move(l).value();
    }
    HttpServerDeps d;
    d.engine = engine_.get();
    d.render_chat = plain_chat;
    d.keys = &keys_;
    d.cache = cache_.get();
    d.ledger = ledger_.get();
    server_ = std::make_unique<HttpServer>(d, s.http);
    ASSERT_TRUE(server_->start("127.0.0.1", 0).ok());
    ASSERT_GT(server_->port(), 0);
  }

  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    engine_.reset();
  }

  std::unique_ptr<httplib::Client> client() {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    c->set_read_timeout(30, 0);
    return c;
  }

  httplib::Result post(const std::string& path, const json& body, httplib::Headers headers = {}) {
    return client()->Post(path.c_str(), headers, body.dump(), "application/json");
  }

  // Steps a thread-less engine on a helper thread until `until` holds (at most ~20 s).
  void step_until(const std::function<bool()>& until) {
    for (int i = 0; i < 20000 && !until(); ++i) {
      if (!engine_->step_for_test()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  // Polls the engine until it has no request and every KV block is free (at most ~10 s).
  bool wait_engine_idle() {
    for (int i = 0; i < 1000; ++i) {
      const EngineStats s = engine_->stats();
      if (s.running == 0 && s.waiting == 0 && s.kv_blocks_free == s.kv_blocks_total) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  static inline Model* model_ = nullptr;
  static inline Tokenizer* tok_ = nullptr;
  static inline ThreadPool* pool_ = nullptr;
  static inline Backend* backend_ = nullptr;
  std::unique_ptr<Engine> engine_;
  ApiKeys keys_;
  std::unique_ptr<ResponseCache> cache_;
  std::unique_ptr<UsageLedger> ledger_;
  std::unique_ptr<HttpServer> server_;
};

json parse_body(const httplib::Result& r) {
  EXPECT_TRUE(r) << "no response";
  return r ? json::parse(r->body) : json();
}

// Sends a streaming request and returns the data payloads of its SSE events.
std::vector<std::string> stream_events(httplib::Client& c, const std::string& path, const json& body,
                                       int* status = nullptr) {
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  SseParser parser;
  req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
    parser.feed(std::string_view(d, n));
    return true;
  };
  auto res = c.send(req);
  EXPECT_TRUE(res);
  if (status) *status = res ? res->status : 0;
  return parser.take();
}

void expect_error(const httplib::Result& r, int status, const std::string& message_part, const std::string& param = "") {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status) << r->body;
  json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
  EXPECT_NE(j["error"]["message"].get<std::string>().find(message_part), std::string::npos) << r->body;
  EXPECT_TRUE(j["error"].contains("type") && j["error"].contains("code") && j["error"].contains("param"));
  if (!param.empty()) {
    EXPECT_EQ(j["error"]["param"], param) << r->body;
  }
}

TEST_F(ServerTest, SmallRoutes) {
  start(default_setup());
  auto c = client();
  auto h = c->Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(c->Get("/ready")->status, 200);
  json models = parse_body(c->Get("/v1/models"));
  EXPECT_EQ(models["data"][0]["id"], "stories");
  auto metrics = c->Get("/metrics");
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("frugal:kv_cache_usage_perc"), std::string::npos);
  EXPECT_NE(metrics->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  expect_error(c->Get("/nope"), 404, "no such route");
}

TEST_F(ServerTest, CompletionsGreedyWithConsistentUsage) {
  start(default_setup());
  json r = parse_body(post("/v1/completions", {{"prompt", kLongPrompt}, {"max_tokens", 12}, {"temperature", 0}}));
  ASSERT_EQ(r["object"], "text_completion") << r.dump();
  EXPECT_EQ(r["model"], "stories");
  EXPECT_EQ(r["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_FALSE(r["choices"][0]["text"].get<std::string>().empty());
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  const json& u = r["usage"];
  EXPECT_EQ(u["prompt_tokens"], (int64_t)tok_->encode(kLongPrompt, true, true).size());
  EXPECT_EQ(u["completion_tokens"], 12);
  EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int64_t>() + 12);
  EXPECT_GT(u["cost_usd"].get<double>(), 0.0);
  EXPECT_EQ(u["cache_hit"], false);
  // The same prompt again: its full blocks come from the prefix cache.
  json r2 = parse_body(post("/v1/completions", {{"prompt", kLongPrompt}, {"max_tokens", 12}, {"temperature", 0}}));
  EXPECT_GT(r2["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>(), 0) << r2.dump();
  EXPECT_EQ(r2["choices"][0]["text"], r["choices"][0]["text"]);
  // /v1/generate answers in choices[0].text.
  json g = parse_body(post("/v1/generate", {{"model", "x"}, {"prompt", kLongPrompt}, {"max_tokens", 12}, {"temperature", 0}}));
  EXPECT_EQ(g["choices"][0]["text"], r["choices"][0]["text"]);
  EXPECT_TRUE(wait_engine_idle());
}

TEST_F(ServerTest, ChatStreamingMatchesNonStreaming) {
  start(default_setup());
  const json body = {{"messages", {{{"role", "user"}, {"content", "Tell me a story about a cat."}}}},
                     {"max_tokens", 20}, {"temperature", 0}};
  json whole = parse_body(post("/v1/chat/completions", body));
  ASSERT_EQ(whole["object"], "chat.completion") << whole.dump();
  const std::string text = whole["choices"][0]["message"]["content"];
  EXPECT_EQ(whole["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(whole["usage"]["prompt_tokens"],
            (int64_t)tok_->encode(plain_chat(body["messages"]).value(), true, true).size());

  json sbody = body;
  sbody["stream"] = true;
  sbody["stream_options"] = {{"include_usage", true}};
  auto c = client();
  int status = 0;
  std::vector<std::string> events = stream_events(*c, "/v1/chat/completions", sbody, &status);
  EXPECT_EQ(status, 200);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  json first = json::parse(events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  std::string streamed;
  std::string finish;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    json ch = json::parse(events[i]);
    EXPECT_TRUE(ch.contains("usage") && ch["usage"].is_null());
    const json& delta = ch["choices"][0]["delta"];
    if (delta.contains("content")) streamed += delta["content"].get<std::string>();
    if (!ch["choices"][0]["finish_reason"].is_null()) finish = ch["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(finish, whole["choices"][0]["finish_reason"]);
  json usage_chunk = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage_chunk["choices"].empty());
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], whole["usage"]["completion_tokens"]);
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"], whole["usage"]["prompt_tokens"]);
}

TEST_F(ServerTest, StopStringsAndTwoChoices) {
  start(default_setup());
  json r = parse_body(post("/v1/completions", {{"prompt", kLongPrompt}, {"max_tokens", 40}, {"temperature", 0}}));
  const std::string full = r["choices"][0]["text"];
  ASSERT_GT(full.size(), 20u);
  const std::string stop = full.substr(10, 4);
  const std::string before = full.substr(0, full.find(stop));
  json s = parse_body(post("/v1/completions",
                           {{"prompt", kLongPrompt}, {"max_tokens", 40}, {"temperature", 0}, {"stop", {stop}}}));
  EXPECT_EQ(s["choices"][0]["text"], before) << "stop " << json(stop).dump();
  EXPECT_EQ(s["choices"][0]["finish_reason"], "stop");

  json n2 = parse_body(post("/v1/completions",
                            {{"prompt", kLongPrompt}, {"max_tokens", 8}, {"temperature", 1.0}, {"seed", 7}, {"n", 2}}));
  ASSERT_EQ(n2["choices"].size(), 2u) << n2.dump();
  EXPECT_EQ(n2["choices"][0]["index"], 0);
  EXPECT_EQ(n2["choices"][1]["index"], 1);
  EXPECT_EQ(n2["usage"]["completion_tokens"], 16);
  EXPECT_EQ(n2["usage"]["prompt_tokens"], (int64_t)tok_->encode(kLongPrompt, true, true).size());
  // Same seed, same two choices.
  json again = parse_body(post("/v1/completions",
                               {{"prompt", kLongPrompt}, {"max_tokens", 8}, {"temperature", 1.0}, {"seed", 7}, {"n", 2}}));
  EXPECT_EQ(again["choices"], n2["choices"]);
}

TEST_F(ServerTest, BadRequests) {
  ServerSetup s = default_setup();
  start(s);
  auto c = client();
  expect_error(c->Post("/v1/completions", "{\"prompt\": ", "application/json"), 400, "not valid JSON");
  expect_error(post("/v1/completions", {{"prompt", "x"}, {"temperature", "hot"}}), 400, "'temperature' must be a number",
               "temperature");
  expect_error(post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "x"}}}},
                                             {"response_format", {{"type", "json_object"}}}}),
               400, "not supported yet", "response_format");
  expect_error(c->Post("/v1/completions", "{\"prompt\":\"\xff\xfe\"}", "application/json"), 400, "not valid UTF-8");
  // Over the context (256): both numbers in the message.
  std::string longp;
  for (int i = 0; i < 40; ++i) longp += kLongPrompt + " ";
  const size_t n = tok_->encode(longp, true, true).size();
  expect_error(post("/v1/completions", {{"prompt", longp}}), 400, std::to_string(n) + " tokens", "prompt");
  expect_error(post("/v1/completions", {{"prompt", longp}}), 400, "256");
  // Over --max-body (64 KiB).
  const std::string big = json{{"prompt", std::string(100 * 1024, 'a')}}.dump();
  expect_error(c->Post("/v1/completions", big, "application/json"), 413, "larger than 65536 bytes");
  EXPECT_TRUE(wait_engine_idle());
}

TEST_F(ServerTest, ApiKeysAndRateLimits) {
  ServerSetup s = default_setup();
  s.api_keys = "sk-alice name=alice\nsk-bob name=bob rpm=1\n";
  s.http.protect_metrics = true;
  s.ledger = true;
  start(s);
  auto c = client();
  const json body = {{"prompt", "Once"}, {"max_tokens", 2}, {"temperature", 0}};
  expect_error(post("/v1/completions", body), 401, "missing API key");
  expect_error(post("/v1/completions", body, {{"Authorization", "Bearer sk-wrong"}}), 401, "invalid API key");
  EXPECT_EQ(post("/v1/completions", body, {{"Authorization", "Bearer sk-alice"}})->status, 200);
  EXPECT_EQ(c->Get("/health")->status, 200);
  EXPECT_EQ(c->Get("/ready")->status, 200);
  EXPECT_EQ(c->Get("/metrics")->status, 401);
  EXPECT_EQ(c->Get("/metrics", {{"Authorization", "Bearer sk-alice"}})->status, 200);
  EXPECT_EQ(post("/v1/completions", body, {{"Authorization", "Bearer sk-bob"}})->status, 200);
  auto limited = post("/v1/completions", body, {{"Authorization", "Bearer sk-bob"}});
  expect_error(limited, 429, "bob");
  const int retry = std::stoi(limited->get_header_value("Retry-After"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 60);
  // The ledger has one row per admitted request, per key.
  server_->stop();
  auto sum = ledger_->summarize(0, 1e12);
  ASSERT_TRUE(sum.ok()) << sum.status().message();
  ASSERT_EQ(sum->size(), 2u);
  EXPECT_EQ((*sum)[0].key_name, "alice");
  EXPECT_EQ((*sum)[0].requests, 1);
  EXPECT_EQ((*sum)[0].completion_tokens, 2);
  EXPECT_GT((*sum)[0].cost_usd, 0.0);
  EXPECT_EQ((*sum)[1].key_name, "bob");
  EXPECT_EQ((*sum)[1].requests, 1);
}

TEST_F(ServerTest, QueueFullIs503) {
  ServerSetup s = default_setup();
  s.start_engine = false;  // submitted requests stay queued
  s.engine.max_waiting = 1;
  start(s);
  const json body = {{"prompt", "Once"}, {"max_tokens", 4}, {"temperature", 0}};
  std::atomic<int> first_status{0};
  std::thread first([&] { first_status = post("/v1/completions", body)->status; });
  // Once the first request is submitted it waits in the engine's queue (nothing steps): the second is
  // refused at once.
  for (int i = 0; i < 2000 && server_->in_flight() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_EQ(server_->in_flight(), 1);
  auto refused = post("/v1/completions", body);
  expect_error(refused, 503, "too many requests are waiting");
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  step_until([&] { return first_status.load() != 0; });
  first.join();
  EXPECT_EQ(first_status.load(), 200);
}

TEST_F(ServerTest, StreamingClientDisconnectCancelsAndFreesKv) {
  ServerSetup s = default_setup();
  s.start_engine = false;
  start(s);
  const json body = {{"prompt", "Once upon a time"}, {"max_tokens", 200}, {"ignore_eos", true},
                     {"temperature", 0}, {"stream", true}};
  std::atomic<bool> client_done{false};
  std::thread t([&] {
    auto c = client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [](const char*, size_t, uint64_t, uint64_t) { return false; };  // hang up at once
    c->send(req);
    client_done = true;
  });
  int64_t steps = 0;
  for (int i = 0; i < 5000 && !(client_done && server_->in_flight() == 0); ++i) {
    steps += engine_->step_for_test() ? 1 : 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  t.join();
  EXPECT_EQ(server_->in_flight(), 0);
  const EngineStats st = engine_->stats();
  EXPECT_EQ(st.requests_finished[(int)FinishReason::kCancelled], 1);
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.kv_blocks_free, st.kv_blocks_total);
  EXPECT_LT(steps, 150);  // stopped long before 200 tokens
}

TEST_F(ServerTest, NonStreamingClientDisconnectCancels) {
  ServerSetup s = default_setup();
  s.start_engine = false;
  start(s);
  std::atomic<bool> client_done{false};
  std::thread t([&] {
    {
      auto c = client();
      c->set_read_timeout(0, 300000);  // gives up after 0.3 s: the engine is not stepping yet
      auto r = c->Post("/v1/completions",
                       json{{"prompt", "Once"}, {"max_tokens", 200}, {"ignore_eos", true}}.dump(), "application/json");
      EXPECT_FALSE(r);
    }  // the client and its socket are gone
    client_done = true;
  });
  for (int i = 0; i < 2000 && !client_done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // The handler notices the closed connection (no write happens for a non-streaming request) and cancels;
  // step slowly so that 200 tokens would take far longer than noticing does.
  int64_t steps = 0;
  for (int i = 0; i < 3000 && !(server_->in_flight() == 0 && engine_->stats().running == 0); ++i) {
    steps += engine_->step_for_test() ? 1 : 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  t.join();
  const EngineStats st = engine_->stats();
  EXPECT_EQ(server_->in_flight(), 0);
  EXPECT_EQ(st.requests_finished[(int)FinishReason::kCancelled], 1);
  EXPECT_EQ(st.kv_blocks_free, st.kv_blocks_total);
  EXPECT_LT(steps, 150);
}

TEST_F(ServerTest, ResponseCacheHitsForDeterministicRequests) {
  ServerSetup s = default_setup();
  s.cache = true;
  start(s);
  const json body = {{"prompt", kLongPrompt}, {"max_tokens", 10}, {"temperature", 0}};
  auto a = post("/v1/completions", body);
  EXPECT_EQ(a->get_header_value("X-Frugal-Cache"), "miss");
  auto b = post("/v1/completions", body);
  EXPECT_EQ(b->get_header_value("X-Frugal-Cache"), "hit");
  json ja = json::parse(a->body), jb = json::parse(b->body);
  EXPECT_EQ(jb["choices"], ja["choices"]);
  EXPECT_EQ(jb["usage"]["cache_hit"], true);
  EXPECT_EQ(jb["usage"]["cost_usd"], 0.0);
  EXPECT_EQ(jb["usage"]["completion_tokens"], ja["usage"]["completion_tokens"]);
  // no-cache bypasses; a sampled request without a seed is not cached.
  EXPECT_EQ(post("/v1/completions", body, {{"Cache-Control", "no-cache"}})->get_header_value("X-Frugal-Cache"), "bypass");
  json sampled = {{"prompt", kLongPrompt}, {"max_tokens", 4}, {"temperature", 0.9}};
  EXPECT_EQ(post("/v1/completions", sampled)->get_header_value("X-Frugal-Cache"), "bypass");
  // A streamed hit replays the text as chunks.
  json sbody = body;
  sbody["stream"] = true;
  auto c = client();
  std::vector<std::string> ev = stream_events(*c, "/v1/completions", sbody);
  ASSERT_GE(ev.size(), 2u);
  EXPECT_EQ(ev.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < ev.size(); ++i) text += json::parse(ev[i])["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(text, ja["choices"][0]["text"]);
  const std::string m = c->Get("/metrics")->body;
  EXPECT_NE(m.find("\nfrugal:response_cache_hits_total 2\n"), std::string::npos) << m;
}

TEST_F(ServerTest, DrainFinishesRunningRequests) {
  ServerSetup s = default_setup();
  s.start_engine = false;
  start(s);
  std::atomic<int> status{0};
  std::vector<std::string> events;
  std::thread t([&] {
    auto c = client();
    int st = 0;
    events = stream_events(*c, "/v1/completions",
                           {{"prompt", "Once"}, {"max_tokens", 30}, {"temperature", 0}, {"stream", true}}, &st);
    status = st;
  });
  for (int i = 0; i < 2000 && server_->in_flight() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_EQ(server_->in_flight(), 1);
  server_->begin_drain();
  auto c = client();
  EXPECT_EQ(c->Get("/ready")->status, 503);
  EXPECT_EQ(c->Get("/health")->status, 200);
  expect_error(post("/v1/completions", {{"prompt", "Once"}}), 503, "draining");
  step_until([&] { return status.load() != 0; });
  t.join();
  EXPECT_EQ(status.load(), 200);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_TRUE(server_->wait_idle(5.0));
}

}  // namespace
}  // namespace frugal
