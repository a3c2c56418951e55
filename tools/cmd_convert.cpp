// frugal convert: a Hugging Face safetensors checkpoint directory to GGUF (llama, mistral, qwen2).
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "compress/convert_hf.h"

namespace frugal::cli {

namespace {

struct ConvertArgs {
  std::string input, output, outtype = "f16";
  int threads = 0;
};

Status convert(const ConvertArgs& a) {
  ConvertOptions o;
  FRUGAL_ASSIGN_OR_RETURN(o.outtype, parse_convert_outtype(a.outtype));
  o.threads = a.threads > 0 ? a.threads : default_threads();
  std::fprintf(stderr, "frugal convert: %s -> %s as %s, %d threads\n", a.input.c_str(), a.output.c_str(),
               dtype_name(o.outtype), o.threads);
  FRUGAL_ASSIGN_OR_RETURN(ConvertSummary s, convert_hf_to_gguf(a.input, a.output, o));
  std::printf("frugal convert: wrote %s\n%s", a.output.c_str(), format_convert_summary(s).c_str());
  return Status::Ok();
}

}  // namespace

Command add_convert_command(CLI::App& root) {
  auto a = std::make_shared<ConvertArgs>();
  std::string archs;
  for (const std::string& s : convert_supported_architectures()) archs += (archs.empty() ? "" : ", ") + s;
  CLI::App* app = root.add_subcommand(
      "convert",
      "Convert a Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer.json) to GGUF. "
      "Architectures: " + archs + ".\n"
      "  frugal convert path/to/hf-model model-f16.gguf --outtype f16");
  app->add_option("input", a->input, "Hugging Face model directory")->required();
  app->add_option("output", a->output, "output .gguf")->required();
  app->add_option("--outtype", a->outtype, "2-D weights as f32, f16, bf16 or q8_0 (1-D tensors stay f32)")
      ->capture_default_str();
  app->add_option("-t,--threads", a->threads, "threads for q8_0 (0: all cores)")->capture_default_str();
  return Command{app, [a] { return convert(*a); }};
}

}  // namespace frugal::cli
