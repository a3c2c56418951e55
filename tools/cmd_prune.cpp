// frugal prune: N:M structured pruning (magnitude or Wanda) into a sparse or dense GGUF file. Library
// code: compress/prune.h (pruning, file writing), compress/prune_calib.h (Wanda activation statistics).
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "compress/prune.h"
#include "compress/prune_calib.h"
#include "tensor/sparse_nm.h"

namespace frugal::cli {

namespace {

struct PruneCli {
  std::string in, out, pattern = "2:4", method = "magnitude", calib, skip, only, type;
  bool dense_out = false;
  int threads = 0;
  int64_t calib_ctx = 512, calib_chunks = 8;
};

Status run_prune(const PruneCli& c) {
  PruneOptions o;
  if (!parse_sparse_pattern(c.pattern, &o.n, &o.m))
    return invalid_argument("--pattern '" + c.pattern + "' is not one of " + sparse_patterns_string());
  if (c.method == "magnitude") {
    o.method = PruneMethod::kMagnitude;
  } else if (c.method == "wanda") {
    o.method = PruneMethod::kWanda;
    if (c.calib.empty()) return invalid_argument("--method wanda needs calibration text (-f FILE)");
  } else {
    return invalid_argument("--method must be magnitude or wanda, not '" + c.method + "'");
  }
  if (!c.type.empty()) {
    DType t;
    if (!dtype_from_name(c.type, &t) || (t != DType::Q8_0 && t != DType::Q4_0 && t != DType::F16))
      return invalid_argument("--type must be Q8_0, Q4_0 or F16, not '" + c.type + "'");
    o.type = t;
  }
  o.only = c.only;
  o.skip = c.skip;
  o.dense_out = c.dense_out;
  o.threads = c.threads > 0 ? c.threads : default_threads();
  if (o.method == PruneMethod::kWanda) {
    FRUGAL_RETURN_IF_ERROR(prune_collect_wanda_stats(c.in, c.calib, c.calib_ctx, c.calib_chunks, o.threads, &o.col_sq));
    std::fprintf(stderr, "prune: activation statistics for %zu tensors from %s\n", o.col_sq.size(), c.calib.c_str());
  }
  PruneReport rep;
  FRUGAL_RETURN_IF_ERROR(prune_gguf(c.in, c.out, o, &rep));
  for (const std::string& w : rep.warnings) std::fprintf(stderr, "prune: warning: %s\n", w.c_str());
  int pruned = 0;
  DType out_type = DType::F32;
  for (const PruneTensorReport& t : rep.tensors) {
    if (!t.pruned) continue;
    ++pruned;
    out_type = t.out_type;
  }
  std::printf("prune: %s -> %s, %d:%d %s, %d tensors pruned, stored as %s%s\n", c.in.c_str(), c.out.c_str(), o.n, o.m,
              c.method.c_str(), pruned, pruned ? dtype_name(out_type) : "-",
              is_sparse_type(out_type) ? " (frugal-only type; llama.cpp will not load this file; use frugal prune "
                                         "--dense-out for a dense copy)"
                                       : " (dense; llama.cpp can load it)");
  std::printf("%s", prune_summary(rep).c_str());
  if (pruned && is_sparse_type(out_type) && sparse_type_info(out_type)->base == DType::F16)
    std::fprintf(stderr,
                 "prune: note: F16-based sparse weights save memory but decode no faster than dense F16 on the "
                 "CPUs measured (docs/SPARSITY.md); --type Q8_0 gives the sparse speed-up\n");
  return Status::Ok();
}

}  // namespace

Command add_prune_command(CLI::App& root) {
  auto c = std::make_shared<PruneCli>();
  CLI::App* app = root.add_subcommand(
      "prune", "N:M structured pruning (magnitude or Wanda) of attention/FFN matrices into a sparse (frugal-only) or "
               "dense GGUF file");
  app->add_option("input", c->in, "input GGUF (F32/F16/BF16; quantized inputs are dequantized with a warning)")
      ->required();
  app->add_option("output", c->out, "output GGUF")->required();
  app->add_option("--pattern", c->pattern, "keep N of every M weights along the input dimension: " +
                                                sparse_patterns_string())
      ->capture_default_str();
  app->add_option("--method", c->method, "magnitude (|w|) or wanda (|w| x input-column activation norm)")
      ->capture_default_str();
  app->add_option("-f,--calibration", c->calib, "calibration text for --method wanda");
  app->add_option("--calib-ctx", c->calib_ctx, "wanda: tokens per calibration chunk")->capture_default_str();
  app->add_option("--calib-chunks", c->calib_chunks, "wanda: at most this many chunks")->capture_default_str();
  app->add_option("--only", c->only, std::string("prune only tensors whose name matches this regex (default: ") +
                                         prune_default_only() + ")");
  app->add_option("--skip", c->skip, "do not prune tensors whose name matches this regex");
  app->add_flag("--dense-out", c->dense_out, "write the pruned weights dense in the base type (llama.cpp loads it)");
  app->add_option("--type", c->type, "base type: Q8_0, Q4_0 or F16 (default: the type of most of the input's prunable matrices if one of these, else Q8_0)");
  app->add_option("-t,--threads", c->threads, "threads (default: number of cores)");
  return Command{app, [c] { return run_prune(*c); }};
}

}  // namespace frugal::cli
