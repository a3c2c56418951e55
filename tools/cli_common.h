// Helpers shared by the `frugal` subcommands: the command registry, option parsing (lists, ISA, KV
// type), the CPU runtime (thread pool + backend), model descriptions and number formatting.
// Everything that can fail because of user input returns a Status; main() prints it and exits 1.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "gguf/gguf_file.h"
#include "tensor/dtype.h"

namespace frugal {
class Model;
}

namespace frugal::cli {

// One subcommand: its CLI11 app (options bound to state the closure owns) and what runs when it is
// the parsed one.
struct Command {
  CLI::App* app = nullptr;
  std::function<Status()> run;
};

Command add_run_command(CLI::App& root);
Command add_bench_command(CLI::App& root);
Command add_inspect_command(CLI::App& root);
Command add_tokenize_command(CLI::App& root);
Command add_logits_command(CLI::App& root);
Command add_synth_command(CLI::App& root);
Command add_batched_bench_command(CLI::App& root);
Command add_usage_command(CLI::App& root);
Command add_serve_command(CLI::App& root);
Command add_quantize_command(CLI::App& root);
Command add_imatrix_command(CLI::App& root);
Command add_perplexity_command(CLI::App& root);
Command add_eval_command(CLI::App& root);
Command add_prune_command(CLI::App& root);
Command add_convert_command(CLI::App& root);

// Threads when -t is not given: the number of logical cores.
int default_threads();

// "1,2,8" -> {1, 2, 8}. Errors name the option and the bad item; every item must be >= min_value.
StatusOr<std::vector<int64_t>> parse_int_list(const std::string& option, const std::string& text, int64_t min_value);

// "scalar" | "avx2" | "avx512" | "auto" (best this CPU supports). Error if the CPU cannot run it.
StatusOr<Isa> parse_isa(const std::string& name);
// "f32" | "f16" (case-insensitive).
StatusOr<DType> parse_kv_type(const std::string& name);

// A thread pool and the CPU backend on it. Move-only; the backend borrows the pool.
struct Runtime {
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Backend> backend;
  Isa isa = Isa::kScalar;
  int n_threads = 1;
};
// repack_limit: bytes the backend may keep as repacked weight copies (LoadFlags::repack_limit()).
StatusOr<Runtime> make_runtime(int n_threads, const std::string& isa_name,
                               size_t repack_limit = kDefaultRepackLimit);

// How the weights get into memory; one flag set shared by run, bench, serve, batched-bench and logits:
//   default (auto): a model whose file fits in half the memory available is read into anonymous
//     huge-page memory, a larger one is mapped (see choose_load_mode);
//   --mmap / --no-mmap: always map the file / always read it into anonymous huge-page memory (in parallel);
//   --mlock: lock the weights in RAM (a refusal is a warning, not an error).
struct LoadFlags {
  bool mmap = false;     // --mmap given
  bool no_mmap = false;  // --no-mmap given
  bool mlock = false;
  int64_t repack_mib = (int64_t)(kDefaultRepackLimit >> 20);  // --repack-mem
  size_t repack_limit() const { return repack_mib > 0 ? (size_t)repack_mib << 20 : 0; }
};
void add_load_flags(CLI::App* app, LoadFlags* flags);
// The mode `flags` ask for with the file's facts: --mmap/--no-mmap win; otherwise kRead when
// file_bytes <= available_bytes / 2, else kMmap. Why: decode reads every weight once per token, and on the
// 2 MiB pages of the read copy it ran faster than on 4 KiB page-cache pages: a MoE decode step (a few
// experts scattered over the whole file) 2.3x on the V2-Lite shape; dense 1.1B models 6-12% at 2 threads
// (docs/BENCHMARKS.md). Larger files are mapped so that they still load when memory is short.
LoadMode choose_load_mode(const LoadFlags& flags, uint64_t file_bytes, uint64_t available_bytes);
// Model::load with `flags`. --no-mmap reads on `pool` (nullptr: a temporary pool, one thread per core) and
// shows a progress line on a terminal for files over 1 GiB; non-default flags get one stderr line
// `<who>: weights ...` (mode, huge pages, lock, time); a refused lock gets a warning line.
StatusOr<std::unique_ptr<Model>> load_model(const std::string& path, const LoadFlags& flags, ThreadPool* pool,
                                            const char* who);
// "THP madvise, AnonHugePages 1.20 GiB": the kernel's transparent-huge-page mode and what this process got.
std::string huge_page_summary();

// One small forward pass (16 tokens) so the weights are paged in and the kernels' buffers and repacked
// weight copies exist before the first real request; returns its wall time in seconds (llama.cpp warms up
// too, and repacks at load).
StatusOr<double> warmup(Model& model, Backend& backend);

// Whole file into a string (prompt files). Errors name the path.
StatusOr<std::string> read_text_file(const std::string& path);

// Sum of the bytes of every tensor of the file (llama-bench's "model_size").
uint64_t tensor_bytes(const GgufFile& f);
// Parameter count: sum of the elements of every tensor.
uint64_t tensor_elements(const GgufFile& f);
// The file's quantization mixture: general.file_type's name (e.g. "Q4_K - Medium") when present, else
// the type holding most bytes.
std::string file_type_name(const GgufFile& f);
// llama.cpp-style one-line description: "<arch> <size> <file type>", e.g. "llama 260K F32".
std::string model_description(const GgufFile& f, uint64_t n_params);

// "12.34 MiB" / "1.20 GiB"; "260.42 K" / "6.74 B" style counts.
std::string format_bytes(uint64_t bytes);
std::string format_count(uint64_t n);
// One-line rendering of bytes: \n \t \r \\ and other control bytes escaped (\xNN); with quotes = true
// also '"' escaped and the result wrapped in quotes. At most max_bytes input bytes are shown (cut at a
// UTF-8 character boundary), then "... (N bytes)" (outside the quotes).
std::string escape_text(std::string_view s, bool quotes, size_t max_bytes = SIZE_MAX);
// The CPU's model name from /proc/cpuinfo ("unknown CPU" if unavailable).
std::string cpu_model_name();

}  // namespace frugal::cli
