// A small Prometheus registry: counters, gauges and histograms with label sets, rendered in the text
// exposition format 0.0.4 (what GET /metrics answers with Content-Type kPrometheusContentType).
//
//   MetricsRegistry reg;
//   CounterFamily& http = reg.add_counter("frugal:http_requests_total", "HTTP requests", {"route", "status"});
//   http.with({"/v1/chat/completions", "200"}).inc();
//   HistogramFamily& ttft = reg.add_histogram("frugal:time_to_first_token_seconds", "TTFT", {}, buckets);
//   ttft.with({}).observe(0.12);
//   std::string text = reg.render();
//
// Names are used verbatim (no suffix is added): metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names
// [a-zA-Z_][a-zA-Z0-9_]* not starting with "__" ("le" is reserved for histograms). Bad names, duplicate
// families, a wrong label-value count and invalid buckets are programmer errors (FRUGAL_CHECK); check
// user-supplied buckets with validate_buckets()/parse_buckets() first.
//
// Thread-safety: everything is safe from any thread. with() takes the family's mutex (cache the returned
// reference on hot paths: it stays valid for the registry's lifetime); inc/set/observe are lock-free
// atomics. render() sees each value atomically (a histogram's buckets, sum and count are each read
// atomically; _count always equals the +Inf bucket).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace frugal {

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// A double updated with compare-exchange (std::atomic<double>::fetch_add needs C++20 library support
// that is not everywhere).
class AtomicDouble {
 public:
  void add(double v);
  void store(double v) { v_.store(v, std::memory_order_relaxed); }
  double load() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0.0};
};

class Counter {
 public:
  void inc(double v = 1.0);  // v >= 0 (FRUGAL_CHECK)
  double value() const { return v_.load(); }

 private:
  AtomicDouble v_;
};

class Gauge {
 public:
  void set(double v) { v_.store(v); }
  void add(double v) { v_.add(v); }
  double value() const { return v_.load(); }

 private:
  AtomicDouble v_;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);  // validated by the family
  void observe(double v);  // NaN is ignored
  // Cumulative counts per bucket (the last is +Inf = count), and the sum.
  std::vector<uint64_t> cumulative_counts() const;
  double sum() const { return sum_.load(); }
  uint64_t count() const;
  const std::vector<double>& upper_bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;                          // finite, strictly increasing
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;     // bounds_.size() + 1 (the last: > every bound)
  AtomicDouble sum_;
};

// Buckets must be non-empty, finite and strictly increasing (+Inf is implicit and must not be listed).
Status validate_buckets(const std::vector<double>& upper_bounds);
// "0.1,0.5,1,2.5" -> validated bounds; errors name `option` and the bad item.
StatusOr<std::vector<double>> parse_buckets(const std::string& option, const std::string& text);
// Prometheus-style defaults for latencies in seconds (5 ms .. 60 s).
std::vector<double> default_latency_buckets();

// A family: one name, help and type, children per label-value tuple (in label_names order).
template <typename T>
class MetricFamily {
 public:
  // The child for these label values, created on first use. Its address never changes.
  T& with(const std::vector<std::string>& label_values);
  const std::string& name() const { return name_; }

 private:
  friend class MetricsRegistry;
  MetricFamily(std::string name, std::string help, std::vector<std::string> label_names,
               std::function<std::unique_ptr<T>()> make)
      : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)), make_(std::move(make)) {}
  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<T>()> make_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;  // rendered in this (sorted) order
};

using CounterFamily = MetricFamily<Counter>;
using GaugeFamily = MetricFamily<Gauge>;
using HistogramFamily = MetricFamily<Histogram>;

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Families render in registration order. A family without labels gets its single child at once (so
  // it renders as 0 before the first update); labelled families render only HELP/TYPE until used.
  CounterFamily& add_counter(const std::string& name, const std::string& help,
                             std::vector<std::string> label_names = {});
  GaugeFamily& add_gauge(const std::string& name, const std::string& help, std::vector<std::string> label_names = {});
  HistogramFamily& add_histogram(const std::string& name, const std::string& help, std::vector<std::string> label_names,
                                 std::vector<double> upper_bounds);
  // An unlabelled gauge whose value is read at render time (e.g. from a stats snapshot). fn is called
  // from the rendering thread without registry locks held; it must be thread-safe.
  void add_callback_gauge(const std::string& name, const std::string& help, std::function<double()> fn);

  // Text exposition format 0.0.4.
  std::string render() const;

 private:
  struct Entry;
  void check_new_name(const std::string& name, const std::vector<std::string>& label_names, bool histogram) const;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

// Text-format helpers (exposed for tests and for callers composing their own lines).
// A sample value: integers without exponent ("3"), others shortest round-trip ("0.25"), "+Inf", "-Inf", "NaN".
std::string format_metric_value(double v);
// Label value escaping: \ -> \\, " -> \", newline -> \n.
std::string escape_label_value(std::string_view v);
// HELP text escaping: \ -> \\, newline -> \n.
std::string escape_help(std::string_view v);

}  // namespace frugal
