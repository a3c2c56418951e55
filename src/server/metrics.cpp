#include "server/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

namespace frugal {

void AtomicDouble::add(double v) {
  double cur = v_.load(std::memory_order_relaxed);
  while (!v_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

void Counter::inc(double v) {
  FRUGAL_CHECK_MSG(v >= 0, "Counter::inc: counters only go up");
  v_.add(v);
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  if (std::isnan(v)) return;
  // Bucket i holds bounds_[i-1] < v <= bounds_[i]; the last holds v > every bound.
  const size_t i = (size_t)(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.add(v);
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += counts_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

uint64_t Histogram::count() const { return cumulative_counts().back(); }

Status validate_buckets(const std::vector<double>& b) {
  if (b.empty()) return invalid_argument("histogram buckets: empty list");
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(b[i])) {
      return invalid_argument("histogram buckets: bound " + format_metric_value(b[i]) +
                              " is not finite (+Inf is implicit)");
    }
    if (i > 0 && !(b[i] > b[i - 1])) {
      return invalid_argument("histogram buckets: " + format_metric_value(b[i]) + " after " +
                              format_metric_value(b[i - 1]) + " (bounds must be strictly increasing)");
    }
  }
  return Status::Ok();
}

StatusOr<std::vector<double>> parse_buckets(const std::string& option, const std::string& text) {
  std::vector<double> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    item.erase(std::remove_if(item.begin(), item.end(), [](unsigned char c) { return std::isspace(c); }), item.end());
    double v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size()) {
      return invalid_argument(option + ": '" + item + "' is not a number (expected a list like 0.1,0.5,1,5)");
    }
    out.push_back(v);
    pos = end + 1;
  }
  Status s = validate_buckets(out);
  if (!s.ok()) return s.with_context(option);
  return out;
}

std::vector<double> default_latency_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::string format_metric_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), (long long)v);
    return std::string(buf, p);
  }
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round-trip
  return std::string(buf, p);
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

template <typename T>
T& MetricFamily<T>::with(const std::vector<std::string>& label_values) {
  FRUGAL_CHECK_MSG(label_values.size() == label_names_.size(), "metric family: wrong number of label values");
  std::lock_guard<std::mutex> lock(mu_);
  auto it = children_.find(label_values);
  if (it == children_.end()) it = children_.emplace(label_values, make_()).first;
  return *it->second;
}

template class MetricFamily<Counter>;
template class MetricFamily<Gauge>;
template class MetricFamily<Histogram>;

namespace {

bool valid_metric_name(const std::string& n) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const unsigned char c = (unsigned char)n[i];
    const bool ok = std::isalpha(c) || c == '_' || c == ':' || (i > 0 && std::isdigit(c));
    if (!ok || c > 0x7f) return false;
  }
  return true;
}

bool valid_label_name(const std::string& n) {
  if (n.empty() || n.rfind("__", 0) == 0) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const unsigned char c = (unsigned char)n[i];
    const bool ok = std::isalpha(c) || c == '_' || (i > 0 && std::isdigit(c));
    if (!ok || c > 0x7f) return false;
  }
  return true;
}

// `{a="x",b="y"}` (with `extra` appended as one more pair when non-empty); "" for no labels.
std::string label_block(const std::vector<std::string>& names, const std::vector<std::string>& values,
                        const std::string& extra_name = "", const std::string& extra_value = "") {
  if (names.empty() && extra_name.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ',';
    out += extra_name + "=\"" + escape_label_value(extra_value) + "\"";
  }
  return out + "}";
}

}  // namespace

enum class MetricKind { kCounter, kGauge, kHistogram, kCallbackGauge };

struct MetricsRegistry::Entry {
  MetricKind kind;
  std::unique_ptr<CounterFamily> counter;
  std::unique_ptr<GaugeFamily> gauge;
  std::unique_ptr<HistogramFamily> histogram;
  std::string name, help;
  std::function<double()> fn;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

void MetricsRegistry::check_new_name(const std::string& name, const std::vector<std::string>& label_names,
                                     bool histogram) const {
  FRUGAL_CHECK_MSG(valid_metric_name(name), ("invalid metric name: " + name).c_str());
  std::set<std::string> seen;
  for (const std::string& l : label_names) {
    FRUGAL_CHECK_MSG(valid_label_name(l), ("invalid label name: " + l).c_str());
    FRUGAL_CHECK_MSG(!(histogram && l == "le"), "label 'le' is reserved for histograms");
    FRUGAL_CHECK_MSG(seen.insert(l).second, ("duplicate label name: " + l).c_str());
  }
  for (const auto& e : entries_) FRUGAL_CHECK_MSG(e->name != name, ("duplicate metric family: " + name).c_str());
}

CounterFamily& MetricsRegistry::add_counter(const std::string& name, const std::string& help,
                                            std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  check_new_name(name, label_names, false);
  auto e = std::make_unique<Entry>();
  e->kind = MetricKind::kCounter;
  e->name = name;
  e->help = help;
  const bool unlabelled = label_names.empty();
  e->counter.reset(new CounterFamily(name, help, std::move(label_names), [] { return std::make_unique<Counter>(); }));
  if (unlabelled) e->counter->with({});
  entries_.push_back(std::move(e));
  return *entries_.back()->counter;
}

GaugeFamily& MetricsRegistry::add_gauge(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  check_new_name(name, label_names, false);
  auto e = std::make_unique<Entry>();
  e->kind = MetricKind::kGauge;
  e->name = name;
  e->help = help;
  const bool unlabelled = label_names.empty();
  e->gauge.reset(new GaugeFamily(name, help, std::move(label_names), [] { return std::make_unique<Gauge>(); }));
  if (unlabelled) e->gauge->with({});
  entries_.push_back(std::move(e));
  return *entries_.back()->gauge;
}

HistogramFamily& MetricsRegistry::add_histogram(const std::string& name, const std::string& help,
                                                std::vector<std::string> label_names, std::vector<double> upper_bounds) {
  const Status s = validate_buckets(upper_bounds);
  FRUGAL_CHECK_MSG(s.ok(), s.message().c_str());
  std::lock_guard<std::mutex> lock(mu_);
  check_new_name(name, label_names, true);
  auto e = std::make_unique<Entry>();
  e->kind = MetricKind::kHistogram;
  e->name = name;
  e->help = help;
  const bool unlabelled = label_names.empty();
  e->histogram.reset(new HistogramFamily(name, help, std::move(label_names),
                                         [b = std::move(upper_bounds)] { return std::make_unique<Histogram>(b); }));
  if (unlabelled) e->histogram->with({});
  entries_.push_back(std::move(e));
  return *entries_.back()->histogram;
}

void MetricsRegistry::add_callback_gauge(const std::string& name, const std::string& help, std::function<double()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  check_new_name(name, {}, false);
  auto e = std::make_unique<Entry>();
  e->kind = MetricKind::kCallbackGauge;
  e->name = name;
  e->help = help;
  e->fn = std::move(fn);
  entries_.push_back(std::move(e));
}

namespace {

template <typename T>
std::vector<std::pair<std::vector<std::string>, const T*>> snapshot_children(
    std::mutex& mu, const std::map<std::vector<std::string>, std::unique_ptr<T>>& children) {
  std::lock_guard<std::mutex> lock(mu);
  std::vector<std::pair<std::vector<std::string>, const T*>> out;
  out.reserve(children.size());
  for (const auto& [labels, child] : children) out.emplace_back(labels, child.get());
  return out;
}

void render_histogram(const std::string& name, const std::vector<std::string>& label_names,
                      const std::vector<std::string>& values, const Histogram& h, std::string* out) {
  const std::vector<uint64_t> cum = h.cumulative_counts();
  const std::vector<double>& b = h.upper_bounds();
  for (size_t i = 0; i < cum.size(); ++i) {
    const std::string le = i < b.size() ? format_metric_value(b[i]) : "+Inf";
    *out += name + "_bucket" + label_block(label_names, values, "le", le) + " " + std::to_string(cum[i]) + "\n";
  }
  const std::string labels = label_block(label_names, values);
  *out += name + "_sum" + labels + " " + format_metric_value(h.sum()) + "\n";
  *out += name + "_count" + labels + " " + std::to_string(cum.back()) + "\n";
}

}  // namespace

std::string MetricsRegistry::render() const {
  std::vector<const Entry*> entries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : entries_) entries.push_back(e.get());
  }
  std::string out;
  static const char* kTypes[] = {"counter", "gauge", "histogram", "gauge"};
  for (const Entry* e : entries) {
    out += "# HELP " + e->name + " " + escape_help(e->help) + "\n";
    out += "# TYPE " + e->name + " " + kTypes[(int)e->kind] + "\n";
    switch (e->kind) {
      case MetricKind::kCounter:
        for (const auto& [labels, c] : snapshot_children(e->counter->mu_, e->counter->children_)) {
          out += e->name + label_block(e->counter->label_names_, labels) + " " + format_metric_value(c->value()) + "\n";
        }
        break;
      case MetricKind::kGauge:
        for (const auto& [labels, g] : snapshot_children(e->gauge->mu_, e->gauge->children_)) {
          out += e->name + label_block(e->gauge->label_names_, labels) + " " + format_metric_value(g->value()) + "\n";
        }
        break;
      case MetricKind::kHistogram:
        for (const auto& [labels, h] : snapshot_children(e->histogram->mu_, e->histogram->children_)) {
          render_histogram(e->name, e->histogram->label_names_, labels, *h, &out);
        }
        break;
      case MetricKind::kCallbackGauge:
        out += e->name + " " + format_metric_value(e->fn()) + "\n";
        break;
    }
  }
  return out;
}

}  // namespace frugal
