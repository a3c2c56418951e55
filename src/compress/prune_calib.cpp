#include "compress/prune_calib.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>

#include "backend/backend.h"
#include "backend/observing_backend.h"
#include "base/thread_pool.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace frugal {

Status prune_collect_wanda_stats(const std::string& model_path, const std::string& text_path, int64_t n_ctx,
                                 int64_t max_chunks, int threads, std::map<std::string, std::vector<float>>* out) {
  std::ifstream in(text_path, std::ios::binary);
  if (!in) return io_error(text_path + ": cannot open calibration text");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::load(model_path));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::from_gguf(model->gguf()));
  const std::vector<int32_t> tokens = tok->encode(text, /*add_special=*/false, /*parse_special=*/false);
  if (tokens.empty()) return invalid_argument(text_path + ": calibration text has no tokens");
  const bool bos = tok->add_bos() && tok->bos() != Tokenizer::kNoToken;
  n_ctx = std::max<int64_t>(2, std::min<int64_t>(n_ctx, model->config().n_ctx_train > 0 ? model->config().n_ctx_train : n_ctx));
  std::vector<ObservedTensor> ts;
  for (const GgufTensorInfo& t : model->gguf().tensors()) {
    if (t.n_dims < 2) continue;
    ts.push_back(ObservedTensor{t.name, t.data, (size_t)t.nbytes, t.ne[0], t.n_dims >= 3 ? t.ne[2] : 1});
  }
  ThreadPool pool(std::max(1, threads));
  std::unique_ptr<Backend> cpu = make_cpu_backend(&pool, detect_isa());
  ObservingBackend obs(cpu.get(), ts);
  KvCache kv(model->config(), n_ctx, DType::F32);
  const int64_t body = bos ? n_ctx - 1 : n_ctx;
  std::vector<float> logits((size_t)model->config().n_vocab);
  int64_t chunks = 0;
  for (size_t start = 0; start < tokens.size() && chunks < max_chunks; start += (size_t)body, ++chunks) {
    std::vector<int32_t> chunk;
    if (bos) chunk.push_back(tok->bos());
    const size_t end = std::min(tokens.size(), start + (size_t)body);
    chunk.insert(chunk.end(), tokens.begin() + (std::ptrdiff_t)start, tokens.begin() + (std::ptrdiff_t)end);
    std::vector<int32_t> pos(chunk.size());
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = (int32_t)i;
    kv.clear();
    FRUGAL_RETURN_IF_ERROR(
        model->forward(obs, kv, chunk.data(), pos.data(), (int64_t)chunk.size(), logits.data(), LogitsMode::kLast));
  }
  for (const auto& [name, s] : obs.stats()) {
    std::vector<float>& v = (*out)[name];
    v.resize((size_t)(s.n_slices * s.K));
    for (int64_t sl = 0; sl < s.n_slices; ++sl)
      for (int64_t k = 0; k < s.K; ++k) v[(size_t)(sl * s.K + k)] = (float)s.mean_sq(sl, k);
  }
  return Status::Ok();
}

}  // namespace frugal
