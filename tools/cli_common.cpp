#include "cli_common.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "base/huge_pages.h"
#include "base/timer.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace frugal::cli {

int default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : (int)n;
}

StatusOr<std::vector<int64_t>> parse_int_list(const std::string& option, const std::string& text, int64_t min_value) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item.erase(std::remove_if(item.begin(), item.end(), [](unsigned char c) { return std::isspace(c); }), item.end());
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size()) {
      return invalid_argument(option + ": '" + item + "' is not an integer (expected a list like 1,2,4)");
    }
    if (v < min_value) return invalid_argument(option + ": " + item + " is below " + std::to_string(min_value));
    out.push_back(v);
  }
  if (out.empty()) return invalid_argument(option + ": empty list");
  return out;
}

StatusOr<Isa> parse_isa(const std::string& name) {
  Isa isa;
  if (name == "auto") return detect_isa();
  if (name == "scalar") {
    isa = Isa::kScalar;
  } else if (name == "avx2") {
    isa = Isa::kAvx2;
  } else if (name == "avx512") {
    isa = Isa::kAvx512;
  } else {
    return invalid_argument("--isa: unknown ISA '" + name + "' (expected scalar, avx2, avx512 or auto)");
  }
  if (!isa_supported(isa)) {
    return unsupported(std::string("--isa: this CPU cannot run ") + isa_name(isa) + " code (it has: " +
                       cpu_features_string() + ")");
  }
  return isa;
}

StatusOr<DType> parse_kv_type(const std::string& name) {
  std::string n = name;
  for (char& c : n) c = (char)std::tolower((unsigned char)c);
  if (n == "f32") return DType::F32;
  if (n == "f16") return DType::F16;
  if (n == "q8_0") return DType::Q8_0;
  return invalid_argument("unknown KV cache type '" + name + "' (expected f32, f16 or q8_0)");
}

StatusOr<Runtime> make_runtime(int n_threads, const std::string& isa_name, size_t repack_limit) {
  if (n_threads <= 0) n_threads = default_threads();
  if (n_threads > 1024) return invalid_argument("-t: " + std::to_string(n_threads) + " threads is too many");
  FRUGAL_ASSIGN_OR_RETURN(Isa isa, parse_isa(isa_name));
  Runtime rt;
  rt.pool = std::make_unique<ThreadPool>(n_threads);
  rt.backend = make_cpu_backend(rt.pool.get(), isa, repack_limit);
  rt.isa = isa;
  rt.n_threads = n_threads;
  return rt;
}

void add_load_flags(CLI::App* app, LoadFlags* flags) {
  app->add_option("--repack-mem", flags->repack_mib,
                  "MiB of repacked weight copies the batched-decode/prefill kernels may keep beside the weights "
                  "(0: none, same results, slower batches)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  auto* map = app->add_flag("--mmap", flags->mmap,
                            "always map the weights from the page cache (default: read them into huge-page "
                            "memory when the file fits in half the available memory, else map them)");
  app->add_flag("--no-mmap", flags->no_mmap,
                "always read the weights into anonymous huge-page memory (the kernel cannot evict them)")
      ->excludes(map);
  app->add_flag("--mlock", flags->mlock, "lock the weights in RAM (a refusal is a warning)");
}

StatusOr<std::unique_ptr<Model>> load_model(const std::string& path, const LoadFlags& flags, ThreadPool* pool,
                                            const char* who) {
  // Auto mode compares the file's size with the memory available (a missing file: 0 bytes, mapped, and
  // Model::load says what is wrong).
  uint64_t file_bytes = 0, available = 0;
  if (!flags.mmap && !flags.no_mmap) {
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(path, ec);
    file_bytes = ec ? 0 : (uint64_t)size;
    available = memory_available_bytes();
  }
  LoadOptions lo;
  lo.mode = choose_load_mode(flags, file_bytes, available);
  const bool reading = lo.mode == LoadMode::kRead;
  lo.lock = flags.mlock;
  lo.populate = true;  // no page fault per weight page while decoding (see LoadOptions::populate)
  std::unique_ptr<ThreadPool> own_pool;
  if (reading && !pool) {
    own_pool = std::make_unique<ThreadPool>(default_threads());
    pool = own_pool.get();
  }
  lo.pool = pool;
  const bool tty = isatty(STDERR_FILENO) != 0;
  int last_pct = -1;
  lo.progress = [&](uint64_t done, uint64_t total) {
    if (!tty || total < (uint64_t(1) << 30)) return;
    const int pct = (int)(100 * done / total);
    if (pct == last_pct) return;
    last_pct = pct;
    std::fprintf(stderr, "\r%s: reading %s: %3d%% of %s", who, path.c_str(), pct, format_bytes(total).c_str());
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
  const double t0 = now_seconds();
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::load(path, lo));
  const double load_s = now_seconds() - t0;
  const MappedFile* m = model->gguf().mapped();
  if (m && !m->lock_warning().empty()) std::fprintf(stderr, "%s: warning: %s\n", who, m->lock_warning().c_str());
  if (m && (reading || flags.mlock)) {
    std::fprintf(stderr, "%s: weights %s (%s) in %.0f ms%s%s; %s\n", who,
                 m->mode() == LoadMode::kRead ? "read into anonymous memory" : "memory-mapped",
                 format_bytes(m->size()).c_str(), load_s * 1e3,
                 m->mode() == LoadMode::kRead ? (m->huge_advised() ? ", MADV_HUGEPAGE" : ", no huge pages") : "",
                 m->locked() ? ", locked" : "", huge_page_summary().c_str());
  }
  return model;
}

LoadMode choose_load_mode(const LoadFlags& flags, uint64_t file_bytes, uint64_t available_bytes) {
  if (flags.mmap) return LoadMode::kMmap;
  if (flags.no_mmap) return LoadMode::kRead;
  return file_bytes > 0 && file_bytes <= available_bytes / 2 ? LoadMode::kRead : LoadMode::kMmap;
}

std::string huge_page_summary() {
  return "THP " + thp_mode() + ", AnonHugePages " + format_bytes(anon_huge_pages_bytes());
}

StatusOr<double> warmup(Model& model, Backend& backend) {
  const double t0 = now_seconds();
  // 16 tokens: at least every format's repack_min_T (backend/quant.h), so the repacked weight copies of
  // the batched kernels are built here and not in the first request.
  constexpr int kTokens = 16;
  const int n = (int)std::min<int64_t>(kTokens, model.config().n_vocab);
  KvCache kv(model.config(), n, DType::F32);
  int32_t tokens[kTokens], pos[kTokens];
  for (int i = 0; i < n; ++i) tokens[i] = pos[i] = i;
  std::vector<float> logits((size_t)model.config().n_vocab);
  FRUGAL_RETURN_IF_ERROR(model.forward(backend, kv, tokens, pos, n, logits.data(), LogitsMode::kLast));
  return now_seconds() - t0;
}

StatusOr<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return io_error(path + ": read error");
  return ss.str();
}

uint64_t tensor_bytes(const GgufFile& f) {
  uint64_t n = 0;
  for (const GgufTensorInfo& t : f.tensors()) n += t.nbytes;
  return n;
}

uint64_t tensor_elements(const GgufFile& f) {
  uint64_t n = 0;
  for (const GgufTensorInfo& t : f.tensors()) n += (uint64_t)t.n_elements();
  return n;
}

std::string file_type_name(const GgufFile& f) {
  static const std::map<int64_t, const char*> kNames = {
      {0, "all F32"}, {1, "F16"}, {2, "Q4_0"}, {3, "Q4_1"}, {7, "Q8_0"}, {8, "Q5_0"}, {9, "Q5_1"},
      {10, "Q2_K - Medium"}, {11, "Q3_K - Small"}, {12, "Q3_K - Medium"}, {13, "Q3_K - Large"},
      {14, "Q4_K - Small"}, {15, "Q4_K - Medium"}, {16, "Q5_K - Small"}, {17, "Q5_K - Medium"}, {18, "Q6_K"},
      {21, "Q2_K - Small"}, {30, "IQ4_XS"}, {32, "BF16"}, {38, "MXFP4"}};
  const GgufValue* v = f.find("general.file_type");
  if (v != nullptr && v->is_int()) {
    auto it = kNames.find(v->i);
    if (it != kNames.end()) return it->second;
  }
  std::map<DType, uint64_t> bytes;
  for (const GgufTensorInfo& t : f.tensors()) bytes[t.type] += t.nbytes;
  if (bytes.empty()) return "no tensors";
  auto best = std::max_element(bytes.begin(), bytes.end(), [](auto& a, auto& b) { return a.second < b.second; });
  return dtype_name(best->first);
}

std::string model_description(const GgufFile& f, uint64_t n_params) {
  auto arch = f.get_string("general.architecture", "?");
  std::string size;
  char buf[32];
  if (n_params < 1000000) {
    std::snprintf(buf, sizeof(buf), "%.0fK", (double)n_params / 1e3);
  } else if (n_params < 1000000000) {
    std::snprintf(buf, sizeof(buf), "%.0fM", (double)n_params / 1e6);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1fB", (double)n_params / 1e9);
  }
  size = buf;
  return (arch.ok() ? arch.value() : std::string("?")) + " " + size + " " + file_type_name(f);
}

std::string format_bytes(uint64_t bytes) {
  char buf[32];
  if (bytes < (1ull << 30)) {
    std::snprintf(buf, sizeof(buf), "%.2f MiB", (double)bytes / (1 << 20));
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f GiB", (double)bytes / (1 << 30));
  }
  return buf;
}

std::string format_count(uint64_t n) {
  char buf[32];
  if (n < 1000000) {
    std::snprintf(buf, sizeof(buf), "%.2f K", (double)n / 1e3);
  } else if (n < 1000000000) {
    std::snprintf(buf, sizeof(buf), "%.2f M", (double)n / 1e6);
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f B", (double)n / 1e9);
  }
  return buf;
}

std::string escape_text(std::string_view s, bool quotes, size_t max_bytes) {
  std::string out = quotes ? "\"" : "";
  size_t n = std::min(s.size(), max_bytes);
  while (n > 0 && n < s.size() && ((unsigned char)s[n] & 0xC0) == 0x80) --n;  // never cut a UTF-8 sequence
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = (unsigned char)s[i];
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\\' || (quotes && c == '"')) {
      out += '\\';
      out += (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += (char)c;
    }
  }
  if (quotes) out += '"';
  if (n < s.size()) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t b = line.find_first_not_of(" \t", colon + 1);
        return b == std::string::npos ? "unknown CPU" : line.substr(b);
      }
    }
  }
  return "unknown CPU";
}

}  // namespace frugal::cli
