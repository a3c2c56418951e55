#include "compress/imatrix_run.h"

#include <algorithm>

#include "backend/observing_backend.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace frugal {

StatusOr<Imatrix> compute_imatrix(Model& model, Backend& backend, const std::vector<int32_t>& tokens,
                                  const ImatrixRunOptions& opt) {
  if (opt.n_ctx < 2 || opt.n_batch < 1) return invalid_argument("imatrix: context must be >= 2 and batch >= 1");
  const int64_t available = (int64_t)tokens.size() / opt.n_ctx;
  if (available == 0)
    return invalid_argument("imatrix: the text has " + std::to_string(tokens.size()) +
                            " tokens, fewer than one chunk of " + std::to_string(opt.n_ctx) + " (use a smaller -c)");
  const int64_t n_chunks = opt.n_chunks > 0 ? std::min(opt.n_chunks, available) : available;
  ObservingBackend obs(&backend, observed_tensors(model.gguf()));
  KvCache kv(model.config(), opt.n_ctx, DType::F32);
  const int64_t V = model.config().n_vocab;
  std::vector<float> logits((size_t)(std::min(opt.n_batch, opt.n_ctx) * V));
  std::vector<int32_t> chunk((size_t)opt.n_ctx), pos((size_t)opt.n_ctx);
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::copy(tokens.begin() + c * opt.n_ctx, tokens.begin() + (c + 1) * opt.n_ctx, chunk.begin());
    if (opt.bos >= 0) chunk[0] = opt.bos;
    kv.clear();
    for (int64_t t0 = 0; t0 < opt.n_ctx; t0 += opt.n_batch) {
      const int64_t T = std::min(opt.n_batch, opt.n_ctx - t0);
      for (int64_t t = 0; t < T; ++t) pos[(size_t)t] = (int32_t)(t0 + t);
      FRUGAL_RETURN_IF_ERROR(
          model.forward(obs, kv, chunk.data() + t0, pos.data(), T, logits.data(), LogitsMode::kAll)
              .with_context("imatrix: chunk " + std::to_string(c)));
    }
    if (opt.on_chunk) opt.on_chunk(c + 1, n_chunks);
  }
  Imatrix m = imatrix_from_stats(obs.stats(), (int32_t)n_chunks, opt.dataset);
  m.chunk_size = (int32_t)opt.n_ctx;
  return m;
}

}  // namespace frugal
