// The metrics `frugal serve` exports on GET /metrics (vLLM-style names with a `frugal:` prefix) and how
// engine statistics map onto them.
//
//   from EngineStats, refreshed at every scrape (render()):
//     frugal:num_requests_running, frugal:num_requests_waiting            gauges
//     frugal:kv_cache_usage_perc (0..1, like vLLM), frugal:kv_cache_blocks_free, frugal:kv_cache_blocks_total,
//     frugal:kv_cache_capacity_tokens                                      gauges
//     frugal:prefix_cache_queries_total, frugal:prefix_cache_hits_total (tokens), frugal:num_preemptions_total,
//     frugal:prompt_tokens_total, frugal:generation_tokens_total,
//     frugal:request_success_total{finished_reason="stop|length|cancelled|error"}   counters (advanced by
//                                                                          the change since the last scrape)
//     frugal:engine_busy_seconds_total, frugal:engine_steps_total          counters
//   from each finished request (observe_request()):
//     frugal:time_to_first_token_seconds, frugal:inter_token_latency_seconds,
//     frugal:e2e_request_latency_seconds, frugal:request_queue_time_seconds  histograms (buckets configurable)
//     frugal:request_cost_usd_total                                         counter
//   from the HTTP layer:
//     frugal:http_requests_total{route,status}                             counter (route is a known path
//                                                                          or "other", bounding cardinality)
//     frugal:response_cache_hits_total, frugal:response_cache_misses_total,
//     frugal:response_cache_bypass_total                                   counters
//     frugal:response_cache_entries, frugal:response_cache_bytes           gauges (from a stats callback)
//   computed at scrape time:
//     frugal:cost_usd_per_million_tokens = cost_per_hour * uptime_hours / (prompt + generation tokens) * 1e6
//                                          (0 before the first token): what the machine costs per token so far
//     frugal:process_cpu_utilization = process CPU seconds (user + system, getrusage) per wall second since
//                                      the previous scrape (or since start); 1.0 = one core busy
//     frugal:uptime_seconds
//
// Thread-safety: every method is safe from any thread. render() serializes the scrape-time refresh.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "model/moe.h"
#include "server/metrics.h"

namespace frugal {

struct ServerMetricsOptions {
  std::vector<double> ttft_buckets;   // empty: default_latency_buckets()
  std::vector<double> itl_buckets;    // empty: finer defaults (1 ms .. 2.5 s)
  std::vector<double> e2e_buckets;    // empty: default_latency_buckets()
  std::vector<double> queue_buckets;  // empty: default_latency_buckets()
  double cost_per_hour_usd = 0;
};

struct CacheGaugeValues {
  int64_t entries = 0;
  int64_t bytes = 0;
};

// The frugal:moe_expert_tokens_total{layer,expert} family in the text format (MoE layers only).
std::string render_moe_tokens(const MoeStats& stats);

class ServerMetrics {
 public:
  // engine_stats: called at every render() (must be thread-safe, e.g. Engine::stats). cache_stats may
  // be empty (no response cache). now_s: a monotonic clock in seconds (tests pass a fake one).
  ServerMetrics(ServerMetricsOptions options, std::function<EngineStats()> engine_stats,
                std::function<CacheGaugeValues()> cache_stats, std::function<double()> now_s);

  // Histograms and cost from one finished request (not for response-cache hits).
  void observe_request(const RequestUsage& usage, double cost_usd);
  void count_http(const std::string& route, int status);
  enum class CacheResult { kHit, kMiss, kBypass };
  void count_cache(CacheResult r);

  // Refreshes the scrape-time values and renders the text exposition format.
  std::string render();

  // MoE models: also export frugal:moe_expert_tokens_total{layer,expert} (tokens routed to each expert of
  // each MoE layer since start) from the model's counters (relaxed atomics, read at render time). The
  // stats must outlive this object; null turns it off.
  void set_moe_stats(const MoeStats* stats) { moe_ = stats; }

  double cost_per_hour_usd() const { return options_.cost_per_hour_usd; }
  MetricsRegistry& registry() { return reg_; }

 private:
  void refresh();  // refresh_mu_ held

  const MoeStats* moe_ = nullptr;
  ServerMetricsOptions options_;
  std::function<EngineStats()> engine_stats_;
  std::function<CacheGaugeValues()> cache_stats_;
  std::function<double()> now_s_;
  MetricsRegistry reg_;

  Gauge *running_, *waiting_, *kv_usage_, *kv_free_, *kv_total_, *kv_capacity_;
  Counter *prefix_queries_, *prefix_hits_, *preemptions_, *prompt_tokens_, *generation_tokens_;
  Counter *busy_s_, *steps_;
  Counter* success_[4];
  HistogramFamily *ttft_, *itl_, *e2e_, *queue_;
  Counter* cost_total_;
  CounterFamily* http_;
  Counter *cache_hits_, *cache_misses_, *cache_bypass_;
  Gauge *cache_entries_, *cache_bytes_;
  Gauge *cost_per_mtok_, *cpu_util_, *uptime_;

  std::mutex refresh_mu_;
  EngineStats last_{};
  double start_s_ = 0;
  double last_wall_s_ = 0, last_cpu_s_ = 0;
};

// CPU seconds (user + system) this process has used (getrusage).
double process_cpu_seconds();

}  // namespace frugal
