// frugal imatrix: collect an importance matrix (mean x^2 per weight input column) over calibration text,
// and/or combine existing ones (--in-file, as llama-imatrix), written in one of llama.cpp's two formats
// (usable by `frugal quantize --imatrix` and llama-quantize): GGUF (llama-imatrix's default) unless the
// output name ends in ".dat" or --output-format says otherwise.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli_common.h"
#include "compress/imatrix_run.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace frugal::cli {

namespace {

struct ImatrixArgs {
  std::string model, file, output = "imatrix.gguf", format, isa = "auto";
  std::vector<std::string> in_files;
  int64_t n_ctx = 512, n_chunks = -1, n_batch = 512;
  int threads = 0;
};

// The statistics of the calibration text -f over the model -m.
StatusOr<Imatrix> collect(const ImatrixArgs& a) {
  FRUGAL_ASSIGN_OR_RETURN(std::string text, read_text_file(a.file));
  FRUGAL_ASSIGN_OR_RETURN(Runtime rt, make_runtime(a.threads, a.isa));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::load(a.model));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::from_gguf(model->gguf()));
  const std::vector<int32_t> tokens = tok->encode(text, /*add_special=*/true, /*parse_special=*/false);
  ImatrixRunOptions o;
  o.n_ctx = a.n_ctx;
  o.n_batch = a.n_batch;
  o.n_chunks = a.n_chunks;
  o.bos = tok->add_bos() ? tok->bos() : -1;
  o.dataset = a.file;
  o.on_chunk = [](int64_t done, int64_t total) {
    std::fprintf(stderr, "\rfrugal imatrix: chunk %lld/%lld", (long long)done, (long long)total);
    if (done == total) std::fprintf(stderr, "\n");
  };
  std::fprintf(stderr, "frugal imatrix: %s, %zu tokens, chunks of %lld\n", a.file.c_str(), tokens.size(),
               (long long)a.n_ctx);
  return compute_imatrix(*model, *rt.backend, tokens, o);
}

Status imatrix(const ImatrixArgs& a) {
  if (a.file.empty() != a.model.empty()) return invalid_argument("-m and -f go together (a model and its calibration text)");
  if (a.file.empty() && a.in_files.empty())
    return invalid_argument("nothing to do: give calibration text (-m MODEL -f FILE) and/or --in-file IMATRIX");
  ImatrixFormat format = imatrix_format_for_path(a.output);
  if (!a.format.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(format, parse_imatrix_format(a.format));
  }
  if (format == ImatrixFormat::kGguf && a.format.empty() && !a.output.ends_with(".gguf"))
    std::fprintf(stderr, "frugal imatrix: note: writing GGUF to '%s' (name it .dat or pass --output-format dat "
                 "for the legacy format)\n", a.output.c_str());
  Imatrix m;
  for (const std::string& in : a.in_files) {
    FRUGAL_ASSIGN_OR_RETURN(Imatrix part, read_imatrix(in));
    std::fprintf(stderr, "frugal imatrix: %s: %zu tensors, %d chunks\n", in.c_str(), part.entries.size(), part.chunks);
    FRUGAL_RETURN_IF_ERROR(merge_imatrix(&m, part, in));
  }
  if (!a.file.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(Imatrix collected, collect(a));
    FRUGAL_RETURN_IF_ERROR(merge_imatrix(&m, collected, a.file));
  }
  FRUGAL_RETURN_IF_ERROR(write_imatrix(m, a.output, format));
  const std::string of = m.chunk_size > 0 ? " of " + std::to_string(m.chunk_size) + " tokens" : "";
  const std::string merged = a.in_files.empty() ? "" : ", " + std::to_string(a.in_files.size()) + " input file(s) merged";
  std::printf("frugal imatrix: wrote %s (%s, %zu tensors, %d chunks%s%s)\n", a.output.c_str(),
              format == ImatrixFormat::kDat ? "imatrix.dat" : "GGUF", m.entries.size(), m.chunks, of.c_str(),
              merged.c_str());
  return Status::Ok();
}

}  // namespace

Command add_imatrix_command(CLI::App& root) {
  auto a = std::make_shared<ImatrixArgs>();
  CLI::App* app = root.add_subcommand(
      "imatrix",
      "Collect an importance matrix (activation statistics per weight column) over calibration text, in "
      "llama.cpp's GGUF imatrix format (default, as llama-imatrix) or its legacy imatrix.dat (an output name "
      "ending in .dat, or --output-format dat). --in-file adds existing imatrix files (either format; means "
      "weighted by the activation rows behind them, as llama-imatrix --in-file), with or without new text.\n"
      "  frugal imatrix -m model-f16.gguf -f calibration.txt -o imatrix.gguf\n"
      "  frugal imatrix --in-file code.gguf --in-file chat.gguf -o combined.gguf");
  app->add_option("-m,--model", a->model, "model .gguf (with -f)");
  app->add_option("-f,--file", a->file, "calibration text file (with -m)");
  app->add_option("--in-file", a->in_files, "imatrix file to add (GGUF or .dat; repeatable)")->check(CLI::ExistingFile);
  app->add_option("-o,--output", a->output, "output file: GGUF, or imatrix.dat if the name ends in .dat")
      ->capture_default_str();
  app->add_option("--output-format", a->format, "gguf or dat (default: dat for a name ending in .dat, else gguf)")
      ->check(CLI::IsMember({"gguf", "dat"}));
  app->add_option("-c,--ctx-size", a->n_ctx, "tokens per chunk")->capture_default_str();
  app->add_option("--chunks", a->n_chunks, "chunks to process (-1: all)")->capture_default_str();
  app->add_option("-b,--batch-size", a->n_batch, "tokens per forward pass")->capture_default_str();
  app->add_option("-t,--threads", a->threads, "threads (0: all cores)")->capture_default_str();
  app->add_option("--isa", a->isa, "kernels: auto, scalar, avx2, avx512")->capture_default_str();
  return Command{app, [a] { return imatrix(*a); }};
}

}  // namespace frugal::cli
