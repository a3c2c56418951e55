// frugal logits: float32 logits of every position of a token sequence, as a NumPy .npy [T, V] (the golden
// files' format). batch = one forward over all tokens; seq = one token per forward through the KV cache.
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "model/model.h"
#include "npy.h"

namespace frugal::cli {

namespace {

struct LogitsOptions {
  std::string model;
  LoadFlags load;  // --mmap/--no-mmap/--mlock
  std::string tokens;
  std::string mode = "batch";
  std::string kv_type = "f32";
  std::string output;
  std::string isa = "auto";
  int threads = 0;
};

Status logits(const LogitsOptions& o) {
  if (o.mode != "batch" && o.mode != "seq") return invalid_argument("--mode: expected batch or seq, got '" + o.mode + "'");
  FRUGAL_ASSIGN_OR_RETURN(std::vector<int64_t> list, parse_int_list("--tokens", o.tokens, 0));
  FRUGAL_ASSIGN_OR_RETURN(DType kv_type, parse_kv_type(o.kv_type));
  FRUGAL_ASSIGN_OR_RETURN(Runtime rt, make_runtime(o.threads, o.isa, o.load.repack_limit()));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, load_model(o.model, o.load, rt.pool.get(), "frugal logits"));
  const ModelConfig& cfg = model->config();
  const int64_t T = (int64_t)list.size();
  const int64_t V = cfg.n_vocab;
  std::vector<int32_t> tokens, pos;
  for (int64_t i = 0; i < T; ++i) {
    if (list[(size_t)i] >= V) {
      return invalid_argument("--tokens: id " + std::to_string(list[(size_t)i]) + " is outside the vocabulary (" +
                              std::to_string(V) + " tokens)");
    }
    tokens.push_back((int32_t)list[(size_t)i]);
    pos.push_back((int32_t)i);
  }
  FRUGAL_RETURN_IF_ERROR(KvCache::supports(cfg, kv_type));
  KvCache kv(cfg, T, kv_type);
  std::vector<float> out((size_t)(T * V));
  if (o.mode == "batch") {
    FRUGAL_RETURN_IF_ERROR(
        model->forward(*rt.backend, kv, tokens.data(), pos.data(), T, out.data(), LogitsMode::kAll));
  } else {
    for (int64_t t = 0; t < T; ++t) {
      FRUGAL_RETURN_IF_ERROR(model->forward(*rt.backend, kv, &tokens[(size_t)t], &pos[(size_t)t], 1,
                                            out.data() + t * V, LogitsMode::kLast));
    }
  }
  FRUGAL_RETURN_IF_ERROR(write_npy_f32(o.output, {T, V}, out.data()));
  std::fprintf(stderr, "frugal logits: wrote %s: [%lld, %lld] float32 (%s mode, kv %s, %s)\n", o.output.c_str(),
               (long long)T, (long long)V, o.mode.c_str(), dtype_name(kv_type), isa_name(rt.isa));
  return Status::Ok();
}

}  // namespace

Command add_logits_command(CLI::App& root) {
  auto o = std::make_shared<LogitsOptions>();
  CLI::App* app = root.add_subcommand("logits", "Write the logits of every position of a token sequence to a .npy file");
  app->add_option("-m,--model", o->model, "GGUF model file")->required();
  add_load_flags(app, &o->load);
  app->add_option("--tokens", o->tokens, "token ids, comma-separated (positions 0..T-1)")->required();
  app->add_option("--mode", o->mode, "batch (one forward) or seq (one token per forward)")->capture_default_str();
  app->add_option("--kv-type", o->kv_type, "KV cache type: f32, f16 or q8_0")->capture_default_str();
  app->add_option("-o,--output", o->output, "output .npy file")->required();
  app->add_option("-t,--threads", o->threads, "threads (default: number of cores)");
  app->add_option("--isa", o->isa, "kernels: scalar, avx2, avx512 or auto")->capture_default_str();
  return Command{app, [o] { return logits(*o); }};
}

}  // namespace frugal::cli
