#include "compress/perplexity.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "base/check.h"

namespace frugal {

StatusOr<PerplexityPlan> plan_perplexity(int64_t n_tokens, const PerplexityOptions& o) {
  if (o.n_ctx < 4) return invalid_argument("context size " + std::to_string(o.n_ctx) + " is too small (need >= 4)");
  if (o.n_batch <= 0) return invalid_argument("batch size must be > 0, got " + std::to_string(o.n_batch));
  if (n_tokens < 2 * o.n_ctx) {
    return invalid_argument("the text has " + std::to_string(n_tokens) + " tokens; perplexity with a context of " +
                            std::to_string(o.n_ctx) + " needs at least " + std::to_string(2 * o.n_ctx) +
                            " tokens (2 x context, as llama-perplexity): use a longer text or a smaller -c");
  }
  PerplexityPlan p;
  p.n_ctx = o.n_ctx;
  p.n_batch = std::min(o.n_batch, o.n_ctx);
  const int64_t max_chunks = n_tokens / o.n_ctx;
  p.n_chunks = o.n_chunks < 0 ? max_chunks : std::min(o.n_chunks, max_chunks);
  if (p.n_chunks == 0) return invalid_argument("--chunks must be > 0 (or < 0 for all)");
  p.first = o.n_ctx / 2;
  p.n_scored = o.n_ctx - 1 - p.first;
  return p;
}

std::vector<int32_t> chunk_tokens(const std::vector<int32_t>& tokens, const PerplexityPlan& plan,
                                  const PerplexityOptions& o, int64_t chunk) {
  FRUGAL_CHECK(chunk >= 0 && chunk < plan.n_chunks);
  const int64_t start = chunk * plan.n_ctx;
  FRUGAL_CHECK(start + plan.n_ctx <= (int64_t)tokens.size());
  std::vector<int32_t> out(tokens.begin() + start, tokens.begin() + start + plan.n_ctx);
  if (o.add_bos) out[0] = o.bos;
  return out;
}

Status chunk_logits(Model& model, Backend& backend, KvCache& kv, const std::vector<int32_t>& chunk,
                    const PerplexityPlan& plan, float* out) {
  FRUGAL_CHECK((int64_t)chunk.size() == plan.n_ctx);
  const int64_t V = model.config().n_vocab;
  kv.clear();
  std::vector<int32_t> pos((size_t)plan.n_ctx);
  for (int64_t i = 0; i < plan.n_ctx; ++i) pos[(size_t)i] = (int32_t)i;
  std::vector<float> logits((size_t)(plan.n_batch * V));
  for (int64_t b = 0; b < plan.n_ctx; b += plan.n_batch) {
    const int64_t n = std::min(plan.n_batch, plan.n_ctx - b);
    FRUGAL_RETURN_IF_ERROR(model.forward(backend, kv, chunk.data() + b, pos.data() + b, n, logits.data(),
                                         LogitsMode::kAll));
    // Copy the rows whose position is in [first, n_ctx - 2].
    for (int64_t t = 0; t < n; ++t) {
      const int64_t p = b + t;
      if (p < plan.first || p > plan.n_ctx - 2) continue;
      std::memcpy(out + (p - plan.first) * V, logits.data() + t * V, sizeof(float) * (size_t)V);
    }
  }
  return Status::Ok();
}

double log_softmax_at(const float* logits, int64_t n_vocab, int32_t tok) {
  FRUGAL_CHECK(n_vocab > 0 && tok >= 0 && tok < n_vocab);
  float max_logit = logits[0];
  for (int64_t i = 1; i < n_vocab; ++i) max_logit = std::max(max_logit, logits[i]);
  double sum_exp = 0.0;
  for (int64_t i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
  return (double)(logits[tok] - max_logit) - std::log(sum_exp);
}

void finish_perplexity(PerplexityResult& r) {
  r.count = (int64_t)r.nll.size();
  if (r.count == 0) return;
  double s = 0, s2 = 0;
  for (double v : r.nll) {
    s += v;
    s2 += v * v;
  }
  const double mean = s / (double)r.count;
  r.ppl = std::exp(mean);
  double var = s2 / (double)r.count - mean * mean;
  r.ppl_err = (var > 0 && r.count > 1) ? std::sqrt(var / (double)(r.count - 1)) * r.ppl : 0.0;
}

StatusOr<PerplexityResult> compute_perplexity(Model& model, Backend& backend, const std::vector<int32_t>& tokens,
                                              const PerplexityOptions& options, const ChunkProgress& progress,
                                              const ChunkLogitsCallback& on_logits) {
  PerplexityResult r;
  r.n_tokens = (int64_t)tokens.size();
  FRUGAL_ASSIGN_OR_RETURN(r.plan, plan_perplexity(r.n_tokens, options));
  const PerplexityPlan& plan = r.plan;
  const int64_t V = model.config().n_vocab;
  for (int32_t t : tokens) {
    if (t < 0 || t >= V) {
      return invalid_argument("token id " + std::to_string(t) + " is outside the model's vocabulary (" +
                              std::to_string(V) + ")");
    }
  }
  FRUGAL_RETURN_IF_ERROR(KvCache::supports(model.config(), DType::F32));
  KvCache kv(model.config(), plan.n_ctx, DType::F32);
  std::vector<float> logits((size_t)(plan.n_scored * V));
  double sum = 0;
  for (int64_t c = 0; c < plan.n_chunks; ++c) {
    const std::vector<int32_t> fed = chunk_tokens(tokens, plan, options, c);
    FRUGAL_RETURN_IF_ERROR(chunk_logits(model, backend, kv, fed, plan, logits.data()));
    for (int64_t j = 0; j < plan.n_scored; ++j) {
      const int32_t next = fed[(size_t)(plan.first + j + 1)];
      const double nll = -log_softmax_at(logits.data() + j * V, V, next);
      r.nll.push_back(nll);
      sum += nll;
    }
    r.running_ppl.push_back(std::exp(sum / (double)r.nll.size()));
    if (on_logits) FRUGAL_RETURN_IF_ERROR(on_logits(c, logits.data()));
    if (progress) progress(c, r.running_ppl.back());
  }
  finish_perplexity(r);
  return r;
}

// ---- saved logits ---------------------------------------------------------------------------------------

namespace {

constexpr char kLogitsMagic[8] = {'F', 'R', 'G', 'L', 'O', 'G', 'T', '1'};
constexpr int64_t kHeaderBytes = 8 + 4 + 4 + 8 * 3;

FILE* as_file(void* f) { return static_cast<FILE*>(f); }

}  // namespace

StatusOr<std::unique_ptr<LogitsFileWriter>> LogitsFileWriter::create(const std::string& path, int64_t n_vocab,
                                                                      const PerplexityPlan& plan,
                                                                      const std::vector<int32_t>& fed_tokens) {
  FRUGAL_CHECK((int64_t)fed_tokens.size() == plan.n_chunks * plan.n_ctx);
  std::unique_ptr<LogitsFileWriter> w(new LogitsFileWriter());
  w->path_ = path;
  w->file_ = std::fopen(path.c_str(), "wb");
  if (!w->file_) return io_error(path + ": cannot create: " + std::strerror(errno));
  w->n_values_ = plan.n_scored * n_vocab;
  w->remaining_ = plan.n_chunks;
  const uint32_t v32[2] = {(uint32_t)n_vocab, 0};
  const int64_t v64[3] = {plan.n_ctx, plan.n_chunks, plan.first};
  bool ok = std::fwrite(kLogitsMagic, 1, 8, as_file(w->file_)) == 8 &&
            std::fwrite(v32, 4, 2, as_file(w->file_)) == 2 && std::fwrite(v64, 8, 3, as_file(w->file_)) == 3 &&
            std::fwrite(fed_tokens.data(), 4, fed_tokens.size(), as_file(w->file_)) == fed_tokens.size();
  if (!ok) return io_error(path + ": write failed");
  return w;
}

LogitsFileWriter::~LogitsFileWriter() {
  if (file_) std::fclose(as_file(file_));
}

Status LogitsFileWriter::append(const float* logits) {
  FRUGAL_CHECK(file_ && remaining_ > 0);
  if (std::fwrite(logits, sizeof(float), (size_t)n_values_, as_file(file_)) != (size_t)n_values_) {
    return io_error(path_ + ": write failed (disk full?)");
  }
  --remaining_;
  return Status::Ok();
}

Status LogitsFileWriter::close() {
  FRUGAL_CHECK(file_);
  FRUGAL_CHECK(remaining_ == 0);
  const int rc = std::fclose(as_file(file_));
  file_ = nullptr;
  if (rc != 0) return io_error(path_ + ": close failed");
  return Status::Ok();
}

StatusOr<std::unique_ptr<LogitsFileReader>> LogitsFileReader::open(const std::string& path) {
  std::unique_ptr<LogitsFileReader> r(new LogitsFileReader());
  r->path_ = path;
  r->file_ = std::fopen(path.c_str(), "rb");
  if (!r->file_) return not_found(path + ": cannot open: " + std::strerror(errno));
  FILE* f = as_file(r->file_);
  char magic[8];
  uint32_t v32[2];
  int64_t v64[3];
  if (std::fread(magic, 1, 8, f) != 8 || std::memcmp(magic, kLogitsMagic, 8) != 0) {
    return corrupt(path + ": not a frugal logits file (written by `frugal perplexity --save-logits`) or a GGUF model");
  }
  if (std::fread(v32, 4, 2, f) != 2 || std::fread(v64, 8, 3, f) != 3) return corrupt(path + ": truncated header");
  r->n_vocab_ = v32[0];
  r->plan_.n_ctx = v64[0];
  r->plan_.n_chunks = v64[1];
  r->plan_.first = v64[2];
  if (r->n_vocab_ <= 0 || r->plan_.n_ctx < 4 || r->plan_.n_chunks <= 0 || r->plan_.n_chunks > (1 << 24) ||
      r->plan_.n_ctx > (1 << 24) || r->plan_.first != r->plan_.n_ctx / 2) {
    return corrupt(path + ": bad header values");
  }
  r->plan_.n_scored = r->plan_.n_ctx - 1 - r->plan_.first;
  r->plan_.n_batch = r->plan_.n_ctx;
  r->tokens_.resize((size_t)(r->plan_.n_chunks * r->plan_.n_ctx));
  if (std::fread(r->tokens_.data(), 4, r->tokens_.size(), f) != r->tokens_.size()) {
    return corrupt(path + ": truncated token list");
  }
  r->data_offset_ = kHeaderBytes + 4 * (int64_t)r->tokens_.size();
  const int64_t expect = r->data_offset_ + r->plan_.n_chunks * r->plan_.n_scored * r->n_vocab_ * 4;
  if (std::fseek(f, 0, SEEK_END) != 0 || std::ftell(f) != expect) {
    return corrupt(path + ": size " + std::to_string(std::ftell(f)) + " bytes, header says " + std::to_string(expect));
  }
  return r;
}

LogitsFileReader::~LogitsFileReader() {
  if (file_) std::fclose(as_file(file_));
}

Status LogitsFileReader::chunk(int64_t i, float* out) const {
  FRUGAL_CHECK(i >= 0 && i < plan_.n_chunks);
  const int64_t n = plan_.n_scored * n_vocab_;
  FILE* f = as_file(file_);
  if (std::fseek(f, (long)(data_offset_ + i * n * 4), SEEK_SET) != 0 ||
      std::fread(out, 4, (size_t)n, f) != (size_t)n) {
    return io_error(path_ + ": read of chunk " + std::to_string(i) + " failed");
  }
  return Status::Ok();
}

bool looks_like_gguf(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char m[4] = {};
  const bool ok = std::fread(m, 1, 4, f) == 4 && std::memcmp(m, "GGUF", 4) == 0;
  std::fclose(f);
  return ok;
}

}  // namespace frugal
