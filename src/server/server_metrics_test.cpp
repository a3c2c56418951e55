#include "server/server_metrics.h"

#include <gtest/gtest.h>

namespace frugal {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

struct Fake {
  EngineStats stats;
  double now = 100.0;
  CacheGaugeValues cache{3, 456};
};

std::unique_ptr<ServerMetrics> make(Fake& f, double cost_per_hour) {
  ServerMetricsOptions o;
  o.cost_per_hour_usd = cost_per_hour;
  o.ttft_buckets = {0.1, 1};
  return std::make_unique<ServerMetrics>(
      o, [&f] { return f.stats; }, [&f] { return f.cache; }, [&f] { return f.now; });
}

TEST(ServerMetrics, EveryIssueNameIsExported) {
  Fake f;
  auto m = make(f, 1.0);
  const std::string text = m->render();
  for (const char* name :
       {"frugal:num_requests_running", "frugal:num_requests_waiting", "frugal:kv_cache_usage_perc",
        "frugal:prefix_cache_queries_total", "frugal:prefix_cache_hits_total", "frugal:num_preemptions_total",
        "frugal:prompt_tokens_total", "frugal:generation_tokens_total", "frugal:request_success_total",
        "frugal:http_requests_total", "frugal:time_to_first_token_seconds", "frugal:inter_token_latency_seconds",
        "frugal:e2e_request_latency_seconds", "frugal:request_queue_time_seconds", "frugal:response_cache_hits_total",
        "frugal:cost_usd_per_million_tokens", "frugal:process_cpu_utilization"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + name + " "), std::string::npos) << name;
  }
}

TEST(ServerMetrics, EngineStatsMapOntoGaugesAndCounters) {
  Fake f;
  auto m = make(f, 3.6);
  f.stats.running = 3;
  f.stats.waiting = 2;
  f.stats.kv_blocks_total = 64;
  f.stats.kv_blocks_free = 16;
  f.stats.kv_usage = 0.75;
  f.stats.prefix_cache_queries = 100;
  f.stats.prefix_cache_hits = 48;
  f.stats.prompt_tokens = 400000;
  f.stats.generation_tokens = 600000;
  f.stats.requests_finished[0] = 5;
  f.stats.requests_finished[2] = 1;
  f.now = 1100.0;  // 1000 s after start: 3.6 $/h -> $1 for 1e6 tokens
  std::string t = m->render();
  EXPECT_TRUE(has_line(t, "frugal:num_requests_running 3")) << t;
  EXPECT_TRUE(has_line(t, "frugal:num_requests_waiting 2"));
  EXPECT_TRUE(has_line(t, "frugal:kv_cache_usage_perc 0.75"));
  EXPECT_TRUE(has_line(t, "frugal:kv_cache_blocks_free 16"));
  EXPECT_TRUE(has_line(t, "frugal:kv_cache_blocks_total 64"));
  EXPECT_TRUE(has_line(t, "frugal:prefix_cache_queries_total 100"));
  EXPECT_TRUE(has_line(t, "frugal:prefix_cache_hits_total 48"));
  EXPECT_TRUE(has_line(t, "frugal:request_success_total{finished_reason=\"stop\"} 5"));
  EXPECT_TRUE(has_line(t, "frugal:request_success_total{finished_reason=\"cancelled\"} 1"));
  EXPECT_TRUE(has_line(t, "frugal:request_success_total{finished_reason=\"length\"} 0"));
  EXPECT_TRUE(has_line(t, "frugal:cost_usd_per_million_tokens 1"));
  EXPECT_TRUE(has_line(t, "frugal:uptime_seconds 1000"));
  EXPECT_TRUE(has_line(t, "frugal:response_cache_entries 3"));
  // Totals advance by the change: a second scrape with more work shows the new totals, not sums.
  f.stats.prefix_cache_queries = 150;
  f.stats.requests_finished[0] = 7;
  f.stats.running = 0;
  t = m->render();
  EXPECT_TRUE(has_line(t, "frugal:prefix_cache_queries_total 150"));
  EXPECT_TRUE(has_line(t, "frugal:request_success_total{finished_reason=\"stop\"} 7"));
  EXPECT_TRUE(has_line(t, "frugal:num_requests_running 0"));
}

TEST(ServerMetrics, RequestHistogramsHttpAndCache) {
  Fake f;
  auto m = make(f, 0);
  RequestUsage u;
  u.ttft_s = 0.05;
  u.e2e_s = 2.0;
  u.queue_s = 0.001;
  u.itl_s = {0.01, 0.02, 0.03};
  m->observe_request(u, 0.5);
  u.ttft_s = 0.5;
  m->observe_request(u, 0.25);
  m->count_http("/v1/completions", 200);
  m->count_http("/v1/completions", 200);
  m->count_http("other", 404);
  m->count_cache(ServerMetrics::CacheResult::kHit);
  m->count_cache(ServerMetrics::CacheResult::kMiss);
  m->count_cache(ServerMetrics::CacheResult::kMiss);
  const std::string t = m->render();
  EXPECT_TRUE(has_line(t, "frugal:time_to_first_token_seconds_bucket{le=\"0.1\"} 1")) << t;
  EXPECT_TRUE(has_line(t, "frugal:time_to_first_token_seconds_bucket{le=\"1\"} 2"));
  EXPECT_TRUE(has_line(t, "frugal:time_to_first_token_seconds_bucket{le=\"+Inf\"} 2"));
  EXPECT_TRUE(has_line(t, "frugal:time_to_first_token_seconds_count 2"));
  EXPECT_TRUE(has_line(t, "frugal:time_to_first_token_seconds_sum 0.55"));
  EXPECT_TRUE(has_line(t, "frugal:inter_token_latency_seconds_count 6"));
  EXPECT_TRUE(has_line(t, "frugal:e2e_request_latency_seconds_count 2"));
  EXPECT_TRUE(has_line(t, "frugal:request_cost_usd_total 0.75"));
  EXPECT_TRUE(has_line(t, "frugal:http_requests_total{route=\"/v1/completions\",status=\"200\"} 2"));
  EXPECT_TRUE(has_line(t, "frugal:http_requests_total{route=\"other\",status=\"404\"} 1"));
  EXPECT_TRUE(has_line(t, "frugal:response_cache_hits_total 1"));
  EXPECT_TRUE(has_line(t, "frugal:response_cache_misses_total 2"));
  EXPECT_TRUE(has_line(t, "frugal:cost_usd_per_million_tokens 0"));
}

TEST(ServerMetrics, CpuUtilizationIsCpuOverWall) {
  Fake f;
  auto m = make(f, 0);
  // Burn some CPU while the fake wall clock advances by 1000 s: utilization is tiny but not negative.
  volatile double x = 0;
  for (int i = 0; i < 2000000; ++i) x = x + i * 1e-9;
  f.now += 1000;
  const std::string t = m->render();
  const size_t p = t.find("\nfrugal:process_cpu_utilization ");
  ASSERT_NE(p, std::string::npos);
  const double v = std::stod(t.substr(p + 32));
  EXPECT_GT(v, 0.0);
  EXPECT_LT(v, 0.01);
}

}  // namespace
}  // namespace frugal

namespace frugal {
namespace {

TEST(ServerMetricsMoe, ExpertTokensOfMoeLayersOnly) {
  MoeStats s(/*n_layer=*/2, /*n_expert=*/2);
  s.set_expert_size(1, /*bytes=*/1000, /*params=*/500);  // layer 0 stays dense
  s.record(1, 1, 3);
  s.record(1, 1, 2);
  EXPECT_EQ(render_moe_tokens(s),
            "# HELP frugal:moe_expert_tokens_total Tokens routed to each expert of each MoE layer.\n"
            "# TYPE frugal:moe_expert_tokens_total counter\n"
            "frugal:moe_expert_tokens_total{layer=\"1\",expert=\"0\"} 0\n"
            "frugal:moe_expert_tokens_total{layer=\"1\",expert=\"1\"} 5\n");
}

}  // namespace
}  // namespace frugal
