#include "server/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

namespace frugal {
namespace {

// A strict reader of the Prometheus text format 0.0.4 as this registry writes it: every family has
// HELP then TYPE before its samples, no family twice, sample names match the family (histograms:
// _bucket/_sum/_count), label syntax with only \\ \" \n escapes, values that parse, histogram buckets
// cumulative with increasing le ending in +Inf and _count equal to the +Inf bucket. Returns "" when
// valid, else the first problem.
struct Sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

bool parse_value(const std::string& s, double* v) {
  if (s == "+Inf") { *v = INFINITY; return true; }
  if (s == "-Inf") { *v = -INFINITY; return true; }
  if (s == "NaN") { *v = NAN; return true; }
  if (s.empty()) return false;
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

bool name_char(char c, bool first, bool colon) {
  return std::isalpha((unsigned char)c) || c == '_' || (colon && c == ':') || (!first && std::isdigit((unsigned char)c));
}

std::string parse_sample(const std::string& line, Sample* s) {
  size_t i = 0;
  while (i < line.size() && name_char(line[i], i == 0, true)) ++i;
  if (i == 0) return "no metric name: " + line;
  s->name = line.substr(0, i);
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      if (i < line.size() && line[i] == '}') { ++i; break; }
      const size_t start = i;
      while (i < line.size() && name_char(line[i], i == start, false)) ++i;
      if (i == start) return "bad label name: " + line;
      const std::string lname = line.substr(start, i - start);
      if (line.compare(i, 2, "=\"") != 0) return "expected =\" after label: " + line;
      i += 2;
      std::string value;
      while (true) {
        if (i >= line.size()) return "unterminated label value: " + line;
        const char c = line[i++];
        if (c == '"') break;
        if (c == '\n') return "raw newline in label value";
        if (c == '\\') {
          if (i >= line.size()) return "dangling escape: " + line;
          const char e = line[i++];
          if (e == '\\') value += '\\';
          else if (e == '"') value += '"';
          else if (e == 'n') value += '\n';
          else return std::string("bad escape \\") + e + ": " + line;
        } else {
          value += c;
        }
      }
      for (const auto& [n, v] : s->labels) if (n == lname) return "duplicate label " + lname;
      s->labels.emplace_back(lname, value);
      if (i < line.size() && line[i] == ',') { ++i; continue; }
      if (i < line.size() && line[i] == '}') { ++i; break; }
      return "expected , or } in labels: " + line;
    }
  }
  if (i >= line.size() || line[i] != ' ') return "expected one space before the value: " + line;
  const std::string value = line.substr(i + 1);
  if (value.find(' ') != std::string::npos) return "timestamps/extra fields not expected: " + line;
  if (!parse_value(value, &s->value)) return "bad value '" + value + "': " + line;
  return "";
}

std::string check_histogram_series(const std::string& family, const std::vector<Sample>& samples) {
  // Group by labels without le.
  std::map<std::vector<std::pair<std::string, std::string>>, std::vector<const Sample*>> series;
  for (const Sample& s : samples) {
    auto labels = s.labels;
    labels.erase(std::remove_if(labels.begin(), labels.end(), [](auto& l) { return l.first == "le"; }), labels.end());
    series[labels].push_back(&s);
  }
  for (const auto& [labels, ss] : series) {
    double last_le = -INFINITY, last_count = 0;
    bool inf = false, has_sum = false, has_count = false;
    double inf_count = -1;
    for (const Sample* s : ss) {
      if (s->name == family + "_bucket") {
        if (inf) return family + ": bucket after +Inf";
        std::string le;
        for (const auto& [n, v] : s->labels) if (n == "le") le = v;
        double lev;
        if (!parse_value(le, &lev)) return family + ": bad le '" + le + "'";
        if (!(lev > last_le)) return family + ": le not increasing";
        if (s->value < last_count) return family + ": buckets not cumulative";
        last_le = lev;
        last_count = s->value;
        if (std::isinf(lev)) { inf = true; inf_count = s->value; }
      } else if (s->name == family + "_sum") {
        if (!inf) return family + ": _sum before the +Inf bucket";
        has_sum = true;
      } else if (s->name == family + "_count") {
        has_count = true;
        if (s->value != inf_count) return family + ": _count differs from the +Inf bucket";
      } else {
        return family + ": unexpected sample " + s->name;
      }
    }
    if (!inf || !has_sum || !has_count) return family + ": incomplete histogram series";
  }
  return "";
}

std::string check_exposition(const std::string& text) {
  if (!text.empty() && text.back() != '\n') return "does not end with a newline";
  std::istringstream in(text);
  std::string line, family, type;
  std::set<std::string> seen;
  bool have_help = false;
  std::vector<Sample> samples;
  auto close_family = [&]() -> std::string {
    if (type == "histogram") return check_histogram_series(family, samples);
    return "";
  };
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      if (std::string e = close_family(); !e.empty()) return e;
      const std::string rest = line.substr(7);
      const size_t sp = rest.find(' ');
      family = rest.substr(0, sp);
      if (!seen.insert(family).second) return "family twice: " + family;
      if (sp == std::string::npos) return "HELP without text: " + line;
      const std::string help = rest.substr(sp + 1);
      for (size_t i = 0; i < help.size(); ++i) {
        if (help[i] == '\\' && (i + 1 >= help.size() || (help[i + 1] != '\\' && help[i + 1] != 'n'))) {
          return "bad escape in HELP: " + line;
        }
        if (help[i] == '\\') ++i;
      }
      have_help = true;
      type.clear();
      samples.clear();
    } else if (line.rfind("# TYPE ", 0) == 0) {
      if (!have_help) return "TYPE without HELP: " + line;
      std::istringstream ls(line.substr(7));
      std::string name;
      ls >> name >> type;
      if (name != family) return "TYPE for another family: " + line;
      if (type != "counter" && type != "gauge" && type != "histogram") return "unknown type: " + line;
      have_help = false;
    } else if (line.empty() || line[0] == '#') {
      return "unexpected line: '" + line + "'";
    } else {
      if (type.empty()) return "sample before TYPE: " + line;
      Sample s;
      if (std::string e = parse_sample(line, &s); !e.empty()) return e;
      if (type != "histogram" && s.name != family) return "sample " + s.name + " in family " + family;
      if (type == "counter" && (s.value < 0 || std::isnan(s.value))) return "negative counter: " + line;
      samples.push_back(s);
    }
  }
  return close_family();
}

TEST(Metrics, ExactRendering) {
  MetricsRegistry reg;
  CounterFamily& http = reg.add_counter("frugal:http_requests_total", "HTTP requests by route and status.",
                                        {"route", "status"});
  GaugeFamily& running = reg.add_gauge("frugal:num_requests_running", "Requests running now.");
  HistogramFamily& ttft = reg.add_histogram("frugal:time_to_first_token_seconds", "Time to first token.", {},
                                            {0.1, 0.5, 2.5});
  reg.add_callback_gauge("frugal:cost_usd_per_million_tokens", "Cost per million tokens.", [] { return 0.25; });
  http.with({"/v1/completions", "200"}).inc();
  http.with({"/v1/chat/completions", "200"}).inc(3);
  http.with({"/v1/chat/completions", "429"}).inc();
  running.with({}).set(4);
  Histogram& h = ttft.with({});
  for (double v : {0.05, 0.1, 0.3, 1.0, 7.0}) h.observe(v);
  const std::string want =
      "# HELP frugal:http_requests_total HTTP requests by route and status.\n"
      "# TYPE frugal:http_requests_total counter\n"
      "frugal:http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 3\n"
      "frugal:http_requests_total{route=\"/v1/chat/completions\",status=\"429\"} 1\n"
      "frugal:http_requests_total{route=\"/v1/completions\",status=\"200\"} 1\n"
      "# HELP frugal:num_requests_running Requests running now.\n"
      "# TYPE frugal:num_requests_running gauge\n"
      "frugal:num_requests_running 4\n"
      "# HELP frugal:time_to_first_token_seconds Time to first token.\n"
      "# TYPE frugal:time_to_first_token_seconds histogram\n"
      "frugal:time_to_first_token_seconds_bucket{le=\"0.1\"} 2\n"
      "frugal:time_to_first_token_seconds_bucket{le=\"0.5\"} 3\n"
      "frugal:time_to_first_token_seconds_bucket{le=\"2.5\"} 4\n"
      "frugal:time_to_first_token_seconds_bucket{le=\"+Inf\"} 5\n"
      "frugal:time_to_first_token_seconds_sum 8.45\n"
      "frugal:time_to_first_token_seconds_count 5\n"
      "# HELP frugal:cost_usd_per_million_tokens Cost per million tokens.\n"
      "# TYPE frugal:cost_usd_per_million_tokens gauge\n"
      "frugal:cost_usd_per_million_tokens 0.25\n";
  EXPECT_EQ(reg.render(), want);
  EXPECT_EQ(check_exposition(want), "");
}

TEST(Metrics, EscapingAndStrictParse) {
  MetricsRegistry reg;
  CounterFamily& c = reg.add_counter("weird_total", "Help with \\ backslash\nand newline.", {"v"});
  c.with({"quote \" back \\ nl \n end"}).inc(2);
  c.with({""}).inc();
  HistogramFamily& h = reg.add_histogram("lat_seconds", "Latency.", {"route"}, {0.001, 1, 1000});
  h.with({"a\"b"}).observe(0.5);
  h.with({"plain"}).observe(5000);
  reg.add_gauge("unused_gauge", "Labelled, never used.", {"x"});
  const std::string text = reg.render();
  EXPECT_EQ(check_exposition(text), "") << text;
  EXPECT_NE(text.find("# HELP weird_total Help with \\\\ backslash\\nand newline.\n"), std::string::npos) << text;
  EXPECT_NE(text.find("weird_total{v=\"quote \\\" back \\\\ nl \\n end\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("weird_total{v=\"\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"a\\\"b\",le=\"1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"plain\",le=\"1000\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_count{route=\"plain\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE unused_gauge gauge\n"), std::string::npos);
}

TEST(Metrics, TheCheckerRejectsBrokenText) {
  // The strict checker is itself tested, so a passing render means something.
  EXPECT_NE(check_exposition("x 1\n"), "");                                                  // no HELP/TYPE
  EXPECT_NE(check_exposition("# HELP x h\n# TYPE x counter\nx{a=\"\\t\"} 1\n"), "");         // bad escape
  EXPECT_NE(check_exposition("# HELP x h\n# TYPE x counter\nx{a=\"b} 1\n"), "");             // unterminated
  EXPECT_NE(check_exposition("# HELP x h\n# TYPE x counter\nx one\n"), "");                  // bad value
  EXPECT_NE(check_exposition("# HELP x h\n# TYPE x counter\ny 1\n"), "");                    // wrong family
  EXPECT_NE(check_exposition("# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                             "h_sum 1\nh_count 1\n"), "");                                     // not cumulative
  EXPECT_NE(check_exposition("# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n"),
            "");                                                                               // count mismatch
  EXPECT_EQ(check_exposition("# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n"), "");
}

TEST(Metrics, HistogramBucketBoundsAreInclusive) {
  Histogram h({1.0, 2.0});
  h.observe(1.0);
  h.observe(2.0);
  h.observe(2.0000001);
  h.observe(NAN);  // ignored
  EXPECT_EQ(h.cumulative_counts(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(h.count(), 3u);
  EXPECT_DOUBLE_EQ(h.sum(), 5.0000001);
}

TEST(Metrics, ValueFormatting) {
  EXPECT_EQ(format_metric_value(0), "0");
  EXPECT_EQ(format_metric_value(3), "3");
  EXPECT_EQ(format_metric_value(-2), "-2");
  EXPECT_EQ(format_metric_value(0.25), "0.25");
  EXPECT_EQ(format_metric_value(0.1), "0.1");
  EXPECT_EQ(format_metric_value(1e20), "1e+20");
  EXPECT_EQ(format_metric_value(INFINITY), "+Inf");
  EXPECT_EQ(format_metric_value(-INFINITY), "-Inf");
  EXPECT_EQ(format_metric_value(NAN), "NaN");
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
}

TEST(Metrics, BucketValidation) {
  EXPECT_TRUE(validate_buckets({0.1, 1, 10}).ok());
  EXPECT_FALSE(validate_buckets({}).ok());
  EXPECT_FALSE(validate_buckets({1, 1}).ok());
  EXPECT_FALSE(validate_buckets({2, 1}).ok());
  EXPECT_FALSE(validate_buckets({1, INFINITY}).ok());
  EXPECT_FALSE(validate_buckets({NAN}).ok());
  StatusOr<std::vector<double>> b = parse_buckets("--ttft-buckets", " 0.05, 0.5,1,2.5 ");
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(*b, (std::vector<double>{0.05, 0.5, 1, 2.5}));
  StatusOr<std::vector<double>> bad = parse_buckets("--ttft-buckets", "0.1,fast");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--ttft-buckets"), std::string::npos);
  EXPECT_NE(bad.status().message().find("'fast'"), std::string::npos);
  StatusOr<std::vector<double>> order = parse_buckets("--b", "1,0.5");
  ASSERT_FALSE(order.ok());
  EXPECT_NE(order.status().message().find("--b: "), std::string::npos) << order.status().message();
  EXPECT_FALSE(parse_buckets("--b", "1,,2").ok());
  EXPECT_TRUE(validate_buckets(default_latency_buckets()).ok());
}

TEST(Metrics, ConcurrentUpdatesAreExact) {
  MetricsRegistry reg;
  CounterFamily& c = reg.add_counter("c_total", "c", {"t"});
  HistogramFamily& h = reg.add_histogram("h", "h", {}, {0.5});
  GaugeFamily& g = reg.add_gauge("g", "g");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        c.with({std::to_string(i % 2)}).inc();
        h.with({}).observe((double)((i + t) % 2));
        g.with({}).add(1);
      }
    });
  }
  std::string mid = reg.render();  // rendering while writers run must stay well-formed
  for (auto& th : threads) th.join();
  EXPECT_EQ(check_exposition(mid), "");
  EXPECT_EQ(c.with({"0"}).value() + c.with({"1"}).value(), 80000);
  EXPECT_EQ(h.with({}).count(), 80000u);
  EXPECT_EQ(h.with({}).sum(), 40000);
  EXPECT_EQ(g.with({}).value(), 80000);
}

TEST(MetricsDeathTest, ProgrammerErrors) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH({ MetricsRegistry r; r.add_counter("bad name", "x"); }, "invalid metric name");
  EXPECT_DEATH({ MetricsRegistry r; r.add_counter("a", "x"); r.add_gauge("a", "y"); }, "duplicate metric family");
  EXPECT_DEATH({ MetricsRegistry r; r.add_histogram("h", "x", {"le"}, {1}); }, "reserved");
  EXPECT_DEATH({ MetricsRegistry r; r.add_histogram("h", "x", {}, {2, 1}); }, "increasing");
  EXPECT_DEATH({ MetricsRegistry r; r.add_counter("c", "x", {"a"}).with({}); }, "wrong number of label values");
  EXPECT_DEATH({ Counter c; c.inc(-1); }, "only go up");
}

}  // namespace
}  // namespace frugal
