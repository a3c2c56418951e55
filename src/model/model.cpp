#include "model/model.h"

#include "model/architectures.h"

namespace frugal {

namespace {

struct ArchEntry {
  const char* name;
  StatusOr<std::unique_ptr<Model>> (*load)(std::unique_ptr<GgufFile>);
};

constexpr ArchEntry kArchitectures[] = {
    {"llama", load_llama},
    {"qwen2", load_qwen2},
    {"deepseek", load_deepseek},
    {"deepseek2", load_deepseek2},
};

}  // namespace

std::vector<std::string> Model::supported_architectures() {
  std::vector<std::string> r;
  for (const ArchEntry& a : kArchitectures) r.push_back(a.name);
  return r;
}

StatusOr<std::unique_ptr<Model>> Model::load(const std::string& path) { return load(path, LoadOptions{}); }

StatusOr<std::unique_ptr<Model>> Model::load(const std::string& path, const LoadOptions& options) {
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::open(path, options));
  FRUGAL_ASSIGN_OR_RETURN(std::string arch, file->get_string("general.architecture"));
  for (const ArchEntry& a : kArchitectures)
    if (arch == a.name) return a.load(std::move(file));
  std::string list;
  for (const ArchEntry& a : kArchitectures) list += (list.empty() ? "" : ", ") + std::string(a.name);
  return unsupported(path + ": architecture '" + arch + "' is not supported (supported: " + list + ")");
}

}  // namespace frugal

namespace frugal {

Status Model::forward(Backend& backend, KvCache& kv, const int32_t* tokens, const int32_t* pos, int64_t T,
                      float* logits, LogitsMode mode) {
  if (T <= 0) return invalid_argument("forward: empty batch");
  int64_t n_kv = kv.n_past();
  for (int64_t t = 0; t < T; ++t) {
    if (pos[t] < 0 || pos[t] >= kv.n_ctx())
      return out_of_range("position " + std::to_string(pos[t]) + " is outside the context (size " +
                          std::to_string(kv.n_ctx()) + ")");
    n_kv = std::max<int64_t>(n_kv, pos[t] + 1);
  }
  const BatchSeq seq{0, T, nullptr, 0, n_kv};
  const int32_t last = (int32_t)(T - 1);
  std::vector<int32_t> all;
  Batch b;
  b.tokens = tokens;
  b.pos = pos;
  b.slots = pos;  // one contiguous sequence: storage row = position
  b.T = T;
  b.seqs = &seq;
  b.n_seqs = 1;
  if (mode == LogitsMode::kAll) {
    all.resize((size_t)T);
    for (int64_t t = 0; t < T; ++t) all[(size_t)t] = (int32_t)t;
    b.logit_rows = all.data();
    b.n_logits = T;
  } else {
    b.logit_rows = &last;
    b.n_logits = 1;
  }
  FRUGAL_RETURN_IF_ERROR(forward_batch(backend, kv, b, logits));
  kv.set_n_past(n_kv);
  return Status::Ok();
}

}  // namespace frugal
