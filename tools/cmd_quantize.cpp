// frugal quantize: convert a GGUF model's weights to another format (Q8_0 ... Q6_K, the K-quant mixes).
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "compress/imatrix.h"
#include "compress/quantize.h"
#include "model/quant_recipe.h"

namespace frugal::cli {

namespace {

struct QuantizeArgs {
  std::string input, output, type, imatrix;
  std::vector<std::string> overrides;
  bool pure = false, leave_output = false, quiet = false;
  int threads = 0;
};

Status quantize(const QuantizeArgs& a) {
  QuantizeOptions o;
  o.type = a.type;
  o.pure = a.pure;
  o.leave_output = a.leave_output;
  o.threads = a.threads > 0 ? a.threads : default_threads();
  o.progress = !a.quiet;
  for (const std::string& ov : a.overrides) {
    const size_t eq = ov.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == ov.size())
      return invalid_argument("--override '" + ov + "': expected REGEX=TYPE, e.g. 'ffn_down=Q6_K'");
    o.overrides.emplace_back(ov.substr(0, eq), ov.substr(eq + 1));
  }
  Imatrix im;
  if (!a.imatrix.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(im, read_imatrix(a.imatrix));
    o.imatrix = &im;
    std::string datasets;
    for (const std::string& d : im.datasets) datasets += (datasets.empty() ? ", dataset " : ", ") + d;
    std::fprintf(stderr, "frugal quantize: imatrix %s: %zu entries, %d chunks%s\n", a.imatrix.c_str(),
                 im.entries.size(), im.chunks, datasets.c_str());
  }
  std::fprintf(stderr, "frugal quantize: %s -> %s as %s%s, %d threads\n", a.input.c_str(), a.output.c_str(),
               a.type.c_str(), a.pure ? " (pure)" : "", o.threads);
  FRUGAL_ASSIGN_OR_RETURN(QuantizeSummary s, quantize_model(a.input, a.output, o));
  std::printf("frugal quantize: wrote %s\n%s", a.output.c_str(), format_quantize_summary(s).c_str());
  return Status::Ok();
}

}  // namespace

Command add_quantize_command(CLI::App& root) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* app = root.add_subcommand(
      "quantize",
      "Convert a GGUF model's weights (F32/F16/BF16, or quantized: re-quantized with a warning) to another "
      "type. Mixes follow llama-quantize (docs/QUANTIZE.md).\n"
      "  frugal quantize model-f16.gguf model-q4km.gguf Q4_K_M --imatrix imatrix.gguf");
  app->add_option("input", a->input, "input .gguf")->required();
  app->add_option("output", a->output, "output .gguf")->required();
  app->add_option("type", a->type, "target: " + quant_recipe_names())->required();
  app->add_flag("--pure", a->pure, "every converted tensor gets TYPE (no mix rules, no Q6_K output)");
  app->add_flag("--leave-output", a->leave_output, "keep output.weight in its input type");
  app->add_option("--override", a->overrides, "REGEX=TYPE: tensors whose name matches REGEX get TYPE (repeatable; first match wins)");
  app->add_option("--imatrix", a->imatrix, "importance matrix from `frugal imatrix` or llama-imatrix: GGUF or legacy imatrix.dat (told apart by content)");
  app->add_option("-t,--threads", a->threads, "threads (0: all cores)")->capture_default_str();
  app->add_flag("-q,--quiet", a->quiet, "no progress bar");
  return Command{app, [a] { return quantize(*a); }};
}

}  // namespace frugal::cli
