// frugal bench: llama-bench's pp/tg tests.
//
//   pp<N>: one prefill of N random tokens into an empty KV cache, in forwards of n_batch tokens.
//   tg<N>: N single-token decode steps starting from an empty KV cache.
//   -d D (--n-depth, like llama-bench -d): the cache first holds D tokens (filled once per test, untimed, in
//   forwards of n_batch); each repetition truncates it back to D and runs the test after them
//   ("pp512 @ d4096").
// Each test runs once as a warm-up (pp: the whole prompt; tg: one step, like llama-bench), then -r timed
// repetitions; t/s = tokens / seconds per repetition, reported as mean ± sample standard deviation.
// Output: a markdown table (llama-bench's columns) or a JSON array with llama-bench's field names.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>

#include "backend/profiling_backend.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "cli_common.h"
#include "engine/generator.h"
#include "model/model.h"
#include "model/moe.h"
#include "sample/sampler.h"

namespace frugal::cli {

namespace {

struct BenchOptions {
  std::vector<std::string> models;
  LoadFlags load;  // --mmap/--no-mmap/--mlock
  std::string n_prompt = "512";
  std::string n_gen = "128";
  std::string n_depth = "0";
  std::string threads;
  int reps = 5;
  std::string output = "md";
  std::string kv_type = "f16";
  std::string isa = "auto";
  int64_t n_batch = 512;
  bool no_warmup = false;
  bool moe_stats = false;
  bool profile = false;
};

// Weight bytes a MoE model actually reads during a test, from the model's expert counters.
struct MoeTally {
  uint64_t tokens = 0, runs = 0;
  double expert_bytes = 0;
};

MoeTally moe_tally(const MoeStats& s) {
  MoeTally t;
  t.tokens = s.n_tokens();
  for (int64_t l = 0; l < s.n_layer(); ++l)
    for (int64_t e = 0; e < s.n_expert(); ++e) {
      const uint64_t runs = s.runs(l, e);
      t.runs += runs;
      t.expert_bytes += (double)runs * (double)s.expert_bytes(l);
    }
  return t;
}

// Bytes every forward reads besides the routed experts: all weights but the experts, without the
// embedding table when it is not also the output matrix (a forward reads one row per token of it).
uint64_t moe_base_bytes(const Model& model) {
  const MoeStats& s = *model.moe_stats();
  uint64_t experts = 0;
  for (int64_t l = 0; l < s.n_layer(); ++l) experts += s.expert_bytes(l);
  uint64_t base = model.weight_bytes() - (uint64_t)model.config().moe.n_expert_used * experts;
  const GgufTensorInfo* embd = model.gguf().tensor("token_embd.weight");
  if (embd && model.gguf().tensor("output.weight")) base -= embd->nbytes;
  return base;
}

struct TestResult {
  std::string model_filename, model_type, isa, kv_type, test_time;
  uint64_t model_size = 0, n_params = 0;
  int n_threads = 0;
  int64_t n_prompt = 0, n_gen = 0, n_batch = 0, n_depth = 0;
  std::vector<uint64_t> samples_ns;
  // --moe-stats: weight bytes read per token (measured from the expert counters) and experts run per MoE
  // layer and forward; active parameters per token and the model's tensor bytes.
  bool moe = false;
  double moe_bytes_per_token = 0, moe_experts_per_layer_forward = 0;
  uint64_t moe_active_params = 0;
  // --profile: per op key, calls / seconds / dispatches summed over the timed repetitions.
  std::map<std::string, OpProfile> profile;

  int64_t n_tokens() const { return n_prompt + n_gen; }
  std::vector<double> samples_ts() const {
    std::vector<double> ts;
    for (uint64_t ns : samples_ns) ts.push_back(ns > 0 ? (double)n_tokens() * 1e9 / (double)ns : 0.0);
    return ts;
  }
};

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / (double)v.size();
}

// Sample standard deviation (n - 1), 0 for fewer than two samples, as llama-bench.
double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / (double)(v.size() - 1));
}

std::vector<double> to_double(const std::vector<uint64_t>& v) { return std::vector<double>(v.begin(), v.end()); }

std::string utc_now_iso8601() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// One timed run of a test on a cache truncated to its first `depth` positions (0: empty); returns
// nanoseconds. tokens[depth..] are the test's tokens.
StatusOr<uint64_t> time_once(Model& model, Backend& backend, KvCache& kv, const std::vector<int32_t>& tokens,
                             int64_t depth, int64_t n_prompt, int64_t n_gen, int64_t n_batch,
                             std::vector<float>& logits) {
  kv.truncate(depth);
  const int32_t* tok = tokens.data() + depth;
  const double t0 = now_seconds();
  if (n_prompt > 0) FRUGAL_RETURN_IF_ERROR(forward_chunked(model, backend, kv, tok, n_prompt, n_batch, logits.data()));
  for (int64_t i = 0; i < n_gen; ++i) {
    FRUGAL_RETURN_IF_ERROR(forward_chunked(model, backend, kv, tok + i, 1, 1, logits.data()));
  }
  return (uint64_t)std::llround((now_seconds() - t0) * 1e9);
}

StatusOr<TestResult> run_test(Model& model, Runtime& rt, DType kv_type, int64_t depth, int64_t n_prompt,
                              int64_t n_gen, const BenchOptions& o) {
  const ModelConfig& cfg = model.config();
  TestResult r;
  r.n_prompt = n_prompt;
  r.n_gen = n_gen;
  r.n_threads = rt.n_threads;
  r.n_batch = o.n_batch;
  r.n_depth = depth;
  r.test_time = utc_now_iso8601();
  const int64_t n = depth + n_prompt + n_gen;
  std::vector<int32_t> tokens((size_t)n);
  Rng rng(1234);
  for (int32_t& t : tokens) t = (int32_t)(rng.next_u64() % (uint64_t)cfg.n_vocab);
  std::vector<float> logits((size_t)cfg.n_vocab);
  ProfilingBackend prof(rt.backend.get(), rt.pool.get());
  Backend& be = o.profile ? static_cast<Backend&>(prof) : *rt.backend;
  FRUGAL_RETURN_IF_ERROR(KvCache::supports(cfg, kv_type));
  KvCache kv(cfg, n, kv_type);
  if (depth > 0) FRUGAL_RETURN_IF_ERROR(forward_chunked(model, be, kv, tokens.data(), depth, o.n_batch, logits.data()));
  if (!o.no_warmup) {
    FRUGAL_RETURN_IF_ERROR(time_once(model, be, kv, tokens, depth, n_prompt, std::min<int64_t>(n_gen, 1),
                                     o.n_batch, logits)
                               .status());
  }
  const MoeStats* ms = o.moe_stats ? model.moe_stats() : nullptr;
  const MoeTally before = ms ? moe_tally(*ms) : MoeTally{};
  prof.reset();
  for (int i = 0; i < o.reps; ++i) {
    FRUGAL_ASSIGN_OR_RETURN(uint64_t ns,
                            time_once(model, be, kv, tokens, depth, n_prompt, n_gen, o.n_batch, logits));
    r.samples_ns.push_back(ns);
  }
  r.profile = prof.ops();
  if (ms) {
    const MoeTally after = moe_tally(*ms);
    const double forwards = (double)o.reps * (double)(n_gen + (n_prompt + o.n_batch - 1) / o.n_batch);
    int64_t n_moe = 0;
    for (int64_t l = 0; l < ms->n_layer(); ++l) n_moe += ms->is_moe_layer(l);
    r.moe = true;
    r.moe_active_params = active_params(model);
    r.moe_bytes_per_token = ((double)moe_base_bytes(model) * forwards + (after.expert_bytes - before.expert_bytes)) /
                            ((double)o.reps * (double)r.n_tokens());
    r.moe_experts_per_layer_forward = (double)(after.runs - before.runs) / forwards / (double)std::max<int64_t>(n_moe, 1);
  }
  return r;
}

nlohmann::ordered_json to_json(const TestResult& r) {
  const std::vector<double> ts = r.samples_ts();
  const std::vector<double> ns = to_double(r.samples_ns);
  return nlohmann::ordered_json{
      {"build_commit", "unknown"}, {"build_number", 0}, {"cpu_info", cpu_model_name()}, {"gpu_info", ""},
      {"backends", "CPU"}, {"isa", r.isa}, {"model_filename", r.model_filename}, {"model_type", r.model_type},
      {"model_size", r.model_size}, {"model_n_params", r.n_params}, {"n_batch", r.n_batch},
      {"n_ubatch", r.n_batch}, {"n_threads", r.n_threads}, {"type_k", r.kv_type}, {"type_v", r.kv_type},
      {"n_gpu_layers", 0}, {"flash_attn", false}, {"use_mmap", true}, {"n_prompt", r.n_prompt},
      {"n_gen", r.n_gen}, {"n_depth", r.n_depth}, {"test_time", r.test_time}, {"avg_ns", (uint64_t)std::llround(mean(ns))},
      {"stddev_ns", (uint64_t)std::llround(stddev(ns))}, {"avg_ts", mean(ts)}, {"stddev_ts", stddev(ts)},
      {"samples_ns", r.samples_ns}, {"samples_ts", ts}};
}

nlohmann::ordered_json to_json_with_moe(const TestResult& r) {
  nlohmann::ordered_json j = to_json(r);
  if (r.moe) {
    j["moe_active_params"] = r.moe_active_params;
    j["moe_bytes_read_per_token"] = r.moe_bytes_per_token;
    j["moe_read_share"] = r.moe_bytes_per_token / (double)r.model_size;
    j["moe_experts_run_per_layer_forward"] = r.moe_experts_per_layer_forward;
  }
  return j;
}

// One line under a test row: what a token read and how fast that was.
void print_moe_row(const TestResult& r) {
  if (!r.moe) return;
  const double ts = mean(r.samples_ts());
  std::printf("|   moe: %.2f experts run per layer and forward; %.1f MiB weights read per token = %.1f%% of %s; "
              "%.2f GB/s on them; active params %s of %s |\n",
              r.moe_experts_per_layer_forward, r.moe_bytes_per_token / (1 << 20),
              100.0 * r.moe_bytes_per_token / (double)r.model_size, format_bytes(r.model_size).c_str(),
              r.moe_bytes_per_token * ts / 1e9, format_count(r.moe_active_params).c_str(),
              format_count(r.n_params).c_str());
  std::fflush(stdout);
}

// --profile: time, calls and thread-pool dispatches per token and op key, largest time first; the rest of
// the wall time ("model code") is spent between backend ops (routing, gathers, sums, the sampler-free loop).
void print_profile(const TestResult& r, int reps) {
  if (r.profile.empty()) return;
  const double per = (double)reps * (double)std::max<int64_t>(1, r.n_gen > 0 ? r.n_gen : 1);
  std::vector<std::pair<std::string, OpProfile>> rows(r.profile.begin(), r.profile.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double wall = 0, ops = 0, calls = 0, disp = 0;
  for (uint64_t ns : r.samples_ns) wall += (double)ns * 1e-9;
  const char* unit = r.n_gen > 0 ? "token" : "prompt";
  std::printf("|   profile per %s: %8s %6s %8s %6s  %s\n", unit, "ms", "%", "calls", "disp", "op");
  for (const auto& [key, p] : rows) {
    ops += p.seconds;
    calls += (double)p.calls;
    disp += (double)p.dispatches;
    std::printf("|   %18s %8.3f %6.1f %8.1f %6.1f  %s\n", "", 1e3 * p.seconds / per, 100.0 * p.seconds / wall,
                (double)p.calls / per, (double)p.dispatches / per, key.c_str());
  }
  std::printf("|   %18s %8.3f %6.1f %8.1f %6.1f  %s\n", "", 1e3 * ops / per, 100.0 * ops / wall, calls / per,
              disp / per, "all backend ops");
  std::printf("|   %18s %8.3f %6.1f %8s %6s  %s\n", "", 1e3 * (wall - ops) / per, 100.0 * (wall - ops) / wall, "",
              "", "model code between ops");
  std::fflush(stdout);
}

void print_markdown_header() {
  std::printf("| %-30s | %10s | %10s | %-10s | %7s | %13s | %20s |\n", "model", "size", "params", "backend",
              "threads", "test", "t/s");
  std::printf("| %s | %s: | %s: | %s | %s: | %s: | %s: |\n", std::string(30, '-').c_str(),
              std::string(9, '-').c_str(), std::string(9, '-').c_str(), std::string(10, '-').c_str(),
              std::string(6, '-').c_str(), std::string(12, '-').c_str(), std::string(19, '-').c_str());
}

void print_markdown_row(const TestResult& r) {
  const std::vector<double> ts = r.samples_ts();
  std::string test = r.n_prompt > 0 ? "pp" + std::to_string(r.n_prompt) : "tg" + std::to_string(r.n_gen);
  if (r.n_depth > 0) test += " @ d" + std::to_string(r.n_depth);
  char tps[64];
  std::snprintf(tps, sizeof(tps), "%.2f ± %.2f", mean(ts), stddev(ts));
  std::printf("| %-30s | %10s | %10s | %-10s | %7d | %13s | %20s |\n", r.model_type.c_str(),
              format_bytes(r.model_size).c_str(), format_count(r.n_params).c_str(), ("CPU " + r.isa).c_str(),
              r.n_threads, test.c_str(), tps);
  std::fflush(stdout);
}

Status bench(const BenchOptions& o) {
  if (o.output != "md" && o.output != "json") return invalid_argument("-o: expected md or json, got '" + o.output + "'");
  if (o.reps < 1) return invalid_argument("-r: repetitions must be >= 1");
  if (o.n_batch < 1) return invalid_argument("-b: batch size must be >= 1");
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int64_t> prompts, parse_int_list("-p", o.n_prompt, 0));
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int64_t> gens, parse_int_list("-n", o.n_gen, 0));
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int64_t> depths, parse_int_list("-d", o.n_depth, 0));
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int64_t> threads,
                          parse_int_list("-t", o.threads.empty() ? std::to_string(default_threads()) : o.threads, 1));
  FRUGAL_ASSIGN_OR_RETURN(DType kv_type, parse_kv_type(o.kv_type));
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  if (o.output == "md") print_markdown_header();
  for (const std::string& path : o.models) {
    FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, load_model(path, o.load, nullptr, "frugal bench"));
    TestResult base;
    base.model_filename = path;
    base.n_params = model->n_params();
    base.model_type = model_description(model->gguf(), base.n_params);
    base.model_size = tensor_bytes(model->gguf());
    base.kv_type = o.kv_type;
    for (int64_t t : threads) {
      FRUGAL_ASSIGN_OR_RETURN(Runtime rt, make_runtime((int)t, o.isa, o.load.repack_limit()));
      std::vector<std::array<int64_t, 3>> tests;  // {depth, n_prompt, n_gen}
      for (int64_t d : depths) {
        for (int64_t p : prompts)
          if (p > 0) tests.push_back({d, p, 0});
        for (int64_t g : gens)
          if (g > 0) tests.push_back({d, 0, g});
      }
      for (const auto& [d, p, g] : tests) {
        FRUGAL_ASSIGN_OR_RETURN(TestResult r, run_test(*model, rt, kv_type, d, p, g, o));
        r.model_filename = base.model_filename;
        r.model_type = base.model_type;
        r.model_size = base.model_size;
        r.n_params = base.n_params;
        r.kv_type = base.kv_type;
        r.isa = isa_name(rt.isa);
        if (o.output == "md") {
          print_markdown_row(r);
          print_moe_row(r);
          print_profile(r, o.reps);
        } else {
          out.push_back(to_json_with_moe(r));
        }
      }
    }
    std::fprintf(stderr, "frugal bench: %s: weights %s; %s\n", path.c_str(),
                 model->gguf().mapped() && model->gguf().mapped()->mode() == LoadMode::kRead ? "in anonymous memory"
                                                                                             : "memory-mapped",
                 huge_page_summary().c_str());
  }
  if (o.output == "json") std::printf("%s\n", out.dump(2).c_str());
  return Status::Ok();
}

}  // namespace

Command add_bench_command(CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* app = root.add_subcommand("bench", "Measure prompt processing (pp) and generation (tg) speed, like llama-bench");
  app->add_option("-m,--model", o->models, "GGUF model file (repeat for several)")->required();
  add_load_flags(app, &o->load);
  app->add_option("-p,--n-prompt", o->n_prompt, "prompt lengths for pp tests, comma-separated (0: none)")
      ->capture_default_str();
  app->add_option("-n,--n-gen", o->n_gen, "token counts for tg tests, comma-separated (0: none)")->capture_default_str();
  app->add_option("-d,--n-depth", o->n_depth,
                  "tokens already in the KV cache before each test, comma-separated (like llama-bench -d)")
      ->capture_default_str();
  app->add_option("-t,--threads", o->threads, "thread counts, comma-separated (default: number of cores)");
  app->add_option("-r,--repetitions", o->reps, "timed repetitions per test")->capture_default_str();
  app->add_option("-o,--output", o->output, "output format: md or json")->capture_default_str();
  app->add_option("-b,--batch-size", o->n_batch, "prompt tokens per forward pass")->capture_default_str();
  app->add_option("--kv-type", o->kv_type, "KV cache type: f32, f16 or q8_0")->capture_default_str();
  app->add_option("--isa", o->isa, "kernels: scalar, avx2, avx512 or auto")->capture_default_str();
  app->add_flag("--no-warmup", o->no_warmup, "skip the warm-up run");
  app->add_flag("--moe-stats", o->moe_stats,
                "MoE models: experts run per layer, weight bytes read per token (share of the model), GB/s on "
                "them, active parameters per token");
  app->add_flag("--profile", o->profile,
                "per op kind and shape: time, calls and thread-pool dispatches per token (pp: per prompt); "
                "markdown output only");
  return Command{app, [o] { return bench(*o); }};
}

}  // namespace frugal::cli
