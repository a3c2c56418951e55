#include "server/server_metrics.h"

#include <sys/resource.h>

#include <algorithm>

namespace frugal {

namespace {

std::vector<double> or_default(std::vector<double> b, std::vector<double> fallback) {
  return b.empty() ? fallback : b;
}

std::vector<double> default_itl_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5};
}

// Advances a counter to an absolute total read from the engine (totals never decrease).
void advance(Counter* c, int64_t now_total, int64_t last_total) {
  if (now_total > last_total) c->inc((double)(now_total - last_total));
}

const char* const kFinishNames[4] = {"stop", "length", "cancelled", "error"};

}  // namespace

double process_cpu_seconds() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& tv) { return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

ServerMetrics::ServerMetrics(ServerMetricsOptions options, std::function<EngineStats()> engine_stats,
                             std::function<CacheGaugeValues()> cache_stats, std::function<double()> now_s)
    : options_(std::move(options)),
      engine_stats_(std::move(engine_stats)),
      cache_stats_(std::move(cache_stats)),
      now_s_(std::move(now_s)) {
  auto gauge = [&](const char* name, const char* help) { return &reg_.add_gauge(name, help).with({}); };
  auto counter = [&](const char* name, const char* help) { return &reg_.add_counter(name, help).with({}); };
  running_ = gauge("frugal:num_requests_running", "Requests being generated (holding KV blocks).");
  waiting_ = gauge("frugal:num_requests_waiting", "Requests queued for admission.");
  kv_usage_ = gauge("frugal:kv_cache_usage_perc", "KV cache usage, 0..1 (1 = every block in use).");
  kv_free_ = gauge("frugal:kv_cache_blocks_free", "Free KV blocks (cached but unreferenced blocks included).");
  kv_total_ = gauge("frugal:kv_cache_blocks_total", "KV blocks in the pool.");
  kv_capacity_ = gauge("frugal:kv_cache_capacity_tokens", "Tokens the KV pool holds.");
  prefix_queries_ = counter("frugal:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.");
  prefix_hits_ = counter("frugal:prefix_cache_hits_total", "Prompt tokens found in the prefix cache.");
  preemptions_ = counter("frugal:num_preemptions_total", "Sequences preempted (recomputed) for lack of KV memory.");
  prompt_tokens_ = counter("frugal:prompt_tokens_total", "Prompt tokens processed.");
  generation_tokens_ = counter("frugal:generation_tokens_total", "Tokens generated.");
  CounterFamily& success = reg_.add_counter("frugal:request_success_total", "Finished requests by finish reason.",
                                            {"finished_reason"});
  for (int i = 0; i < 4; ++i) success_[i] = &success.with({kFinishNames[i]});
  busy_s_ = counter("frugal:engine_busy_seconds_total", "Seconds the engine spent in steps.");
  steps_ = counter("frugal:engine_steps_total", "Engine steps (batched forwards).");
  ttft_ = &reg_.add_histogram("frugal:time_to_first_token_seconds", "Submit to first token.", {},
                              or_default(options_.ttft_buckets, default_latency_buckets()));
  itl_ = &reg_.add_histogram("frugal:inter_token_latency_seconds", "Time between consecutive tokens of a request.",
                             {}, or_default(options_.itl_buckets, default_itl_buckets()));
  e2e_ = &reg_.add_histogram("frugal:e2e_request_latency_seconds", "Submit to finish.", {},
                             or_default(options_.e2e_buckets, default_latency_buckets()));
  queue_ = &reg_.add_histogram("frugal:request_queue_time_seconds", "Submit to first scheduled.", {},
                               or_default(options_.queue_buckets, default_latency_buckets()));
  cost_total_ = counter("frugal:request_cost_usd_total", "Cost charged to requests (their share of engine time).");
  http_ = &reg_.add_counter("frugal:http_requests_total", "HTTP requests by route and status.", {"route", "status"});
  cache_hits_ = counter("frugal:response_cache_hits_total", "Requests answered from the response cache.");
  cache_misses_ = counter("frugal:response_cache_misses_total", "Cacheable requests not found in the response cache.");
  cache_bypass_ = counter("frugal:response_cache_bypass_total",
                          "Requests that skipped the response cache (not deterministic, no-cache, cache off).");
  cache_entries_ = gauge("frugal:response_cache_entries", "Entries in the response cache.");
  cache_bytes_ = gauge("frugal:response_cache_bytes", "Bytes in the response cache.");
  cost_per_mtok_ = gauge("frugal:cost_usd_per_million_tokens",
                         "Machine cost (--cost-per-hour x uptime) per million tokens processed so far.");
  cpu_util_ = gauge("frugal:process_cpu_utilization",
                    "Process CPU seconds per wall second since the previous scrape (1 = one core busy).");
  uptime_ = gauge("frugal:uptime_seconds", "Seconds since the server started.");
  start_s_ = last_wall_s_ = now_s_();
  last_cpu_s_ = process_cpu_seconds();
}

void ServerMetrics::observe_request(const RequestUsage& u, double cost_usd) {
  ttft_->with({}).observe(u.ttft_s);
  e2e_->with({}).observe(u.e2e_s);
  queue_->with({}).observe(u.queue_s);
  Histogram& itl = itl_->with({});
  for (double d : u.itl_s) itl.observe(d);
  if (cost_usd > 0) cost_total_->inc(cost_usd);
}

void ServerMetrics::count_http(const std::string& route, int status) {
  http_->with({route, std::to_string(status)}).inc();
}

void ServerMetrics::count_cache(CacheResult r) {
  switch (r) {
    case CacheResult::kHit: cache_hits_->inc(); break;
    case CacheResult::kMiss: cache_misses_->inc(); break;
    case CacheResult::kBypass: cache_bypass_->inc(); break;
  }
}

void ServerMetrics::refresh() {
  const EngineStats s = engine_stats_();
  running_->set((double)s.running);
  waiting_->set((double)s.waiting);
  kv_usage_->set(s.kv_usage);
  kv_free_->set((double)s.kv_blocks_free);
  kv_total_->set((double)s.kv_blocks_total);
  kv_capacity_->set((double)s.kv_tokens_capacity);
  advance(prefix_queries_, s.prefix_cache_queries, last_.prefix_cache_queries);
  advance(prefix_hits_, s.prefix_cache_hits, last_.prefix_cache_hits);
  advance(preemptions_, s.preemptions, last_.preemptions);
  advance(prompt_tokens_, s.prompt_tokens, last_.prompt_tokens);
  advance(generation_tokens_, s.generation_tokens, last_.generation_tokens);
  advance(steps_, s.steps, last_.steps);
  if (s.busy_s > last_.busy_s) busy_s_->inc(s.busy_s - last_.busy_s);
  for (int i = 0; i < 4; ++i) advance(success_[i], s.requests_finished[i], last_.requests_finished[i]);
  last_ = s;

  if (cache_stats_) {
    const CacheGaugeValues c = cache_stats_();
    cache_entries_->set((double)c.entries);
    cache_bytes_->set((double)c.bytes);
  }
  const double now = now_s_();
  const double uptime = std::max(0.0, now - start_s_);
  uptime_->set(uptime);
  const int64_t tokens = s.prompt_tokens + s.generation_tokens;
  cost_per_mtok_->set(tokens > 0 ? options_.cost_per_hour_usd * (uptime / 3600.0) / (double)tokens * 1e6 : 0.0);
  const double cpu = process_cpu_seconds();
  const double wall = now - last_wall_s_;
  if (wall > 0) {
    cpu_util_->set(std::max(0.0, cpu - last_cpu_s_) / wall);
    last_wall_s_ = now;
    last_cpu_s_ = cpu;
  }
}

std::string ServerMetrics::render() {
  {
    std::lock_guard<std::mutex> lock(refresh_mu_);
    refresh();
  }
  std::string text = reg_.render();
  if (moe_) text += render_moe_tokens(*moe_);
  return text;
}

std::string render_moe_tokens(const MoeStats& s) {
  std::string out =
      "# HELP frugal:moe_expert_tokens_total Tokens routed to each expert of each MoE layer.\n"
      "# TYPE frugal:moe_expert_tokens_total counter\n";
  for (int64_t l = 0; l < s.n_layer(); ++l) {
    if (!s.is_moe_layer(l)) continue;
    for (int64_t e = 0; e < s.n_expert(); ++e) {
      out += "frugal:moe_expert_tokens_total{layer=\"" + std::to_string(l) + "\",expert=\"" + std::to_string(e) +
             "\"} " + std::to_string(s.tokens(l, e)) + "\n";
    }
  }
  return out;
}

}  // namespace frugal
