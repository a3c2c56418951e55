// Perplexity over a text, llama-perplexity's default method (and the per-chunk logits its KL mode needs).
//
// Procedure (identical to llama.cpp's `perplexity()`):
//   tokens = tokenize(whole text, BOS added when the vocabulary says so)
//   n_chunks = floor(n_tokens / n_ctx) (or fewer when asked); the text needs at least 2 * n_ctx tokens
//   chunk i = tokens[i*n_ctx, (i+1)*n_ctx), its first token replaced by BOS (when the model adds BOS),
//             positions 0..n_ctx-1 in an empty KV cache, forwarded n_batch tokens at a time
//   scored  = the second half only: the logits at positions first..n_ctx-2 (first = n_ctx/2) predict the
//             tokens at first+1..n_ctx-1, i.e. n_ctx - 1 - first tokens per chunk
//   nll     = -log_softmax(logits)[next token], accumulated in double
//   running PPL after chunk i = exp(sum nll / count); final PPL = exp(mean nll) with the uncertainty
//             ppl * sqrt((mean(nll^2) - mean(nll)^2) / (count - 1)), as llama.cpp prints it.
//
// Thread-safety: functions here are called from one thread; the Model and Backend are borrowed for the
// duration of the call.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "model/model.h"

namespace frugal {

struct PerplexityOptions {
  int64_t n_ctx = 512;     // tokens per chunk (>= 4; even values score exactly half)
  int64_t n_batch = 2048;  // tokens per forward inside a chunk (capped at n_ctx; > 0)
  int64_t n_chunks = -1;   // chunks to evaluate (< 0: every whole chunk of the text)
  bool add_bos = true;     // replace each chunk's first token by `bos` (llama.cpp does when the vocab adds BOS)
  int32_t bos = 1;         // BOS id (used only with add_bos)
};

// How the token stream is cut. Errors: fewer than 2 * n_ctx tokens (the message says how many are
// needed), n_ctx < 4, n_batch <= 0.
struct PerplexityPlan {
  int64_t n_ctx = 0;
  int64_t n_batch = 0;
  int64_t n_chunks = 0;
  int64_t first = 0;     // first logit position scored in a chunk (n_ctx / 2)
  int64_t n_scored = 0;  // scored tokens per chunk (n_ctx - 1 - first)
};
StatusOr<PerplexityPlan> plan_perplexity(int64_t n_tokens, const PerplexityOptions& options);

// The n_ctx tokens of chunk `chunk` as they are fed: tokens[chunk*n_ctx ...], first replaced by BOS.
std::vector<int32_t> chunk_tokens(const std::vector<int32_t>& tokens, const PerplexityPlan& plan,
                                  const PerplexityOptions& options, int64_t chunk);

// Forwards one chunk (n_ctx tokens from chunk_tokens()) through `model` in an empty cache and writes the
// logits of the scored positions first..n_ctx-2 to out[n_scored, n_vocab]. `kv` must hold >= n_ctx
// positions; it is cleared first.
Status chunk_logits(Model& model, Backend& backend, KvCache& kv, const std::vector<int32_t>& chunk,
                    const PerplexityPlan& plan, float* out);

// log_softmax(logits)[tok] computed like llama.cpp (float max, double sum of expf). n_vocab > 0.
double log_softmax_at(const float* logits, int64_t n_vocab, int32_t tok);

struct PerplexityResult {
  int64_t n_tokens = 0;  // tokens of the whole text
  PerplexityPlan plan;
  int64_t count = 0;                // scored tokens in total
  std::vector<double> running_ppl;  // after each chunk
  std::vector<double> nll;          // per scored token, in order
  double ppl = 0;
  double ppl_err = 0;  // llama.cpp's "+/-"
};

// Final figures from per-token negative log-likelihoods (count >= 2 for an uncertainty; 0 otherwise).
void finish_perplexity(PerplexityResult& r);

// Called after each chunk with its index and the logits of its scored positions [n_scored, n_vocab].
using ChunkLogitsCallback = std::function<Status(int64_t chunk, const float* logits)>;
// Called after each chunk with the running perplexity (for progress output).
using ChunkProgress = std::function<void(int64_t chunk, double running_ppl)>;

// Runs the whole procedure on `tokens` (already tokenized, BOS included). `on_logits` (may be empty)
// sees every chunk's scored logits, e.g. to save them or compare with a base model.
StatusOr<PerplexityResult> compute_perplexity(Model& model, Backend& backend, const std::vector<int32_t>& tokens,
                                              const PerplexityOptions& options, const ChunkProgress& progress,
                                              const ChunkLogitsCallback& on_logits = {});

// Saved base logits (for --save-logits / --kl-base FILE): our own little format, not llama.cpp's.
//   "FRGLOGT1" | u32 n_vocab | u32 0 | i64 n_ctx | i64 n_chunks | i64 first | i32 tokens[n_chunks*n_ctx]
//   (as fed, BOS substituted) | per chunk f32 logits[n_scored, n_vocab]
// Writer: open, then append chunks in order; close() checks that every chunk was written.
class LogitsFileWriter {
 public:
  static StatusOr<std::unique_ptr<LogitsFileWriter>> create(const std::string& path, int64_t n_vocab,
                                                            const PerplexityPlan& plan,
                                                            const std::vector<int32_t>& fed_tokens);
  ~LogitsFileWriter();
  Status append(const float* logits);  // [n_scored, n_vocab]
  Status close();

 private:
  LogitsFileWriter() = default;
  std::string path_;
  void* file_ = nullptr;  // FILE*
  int64_t n_values_ = 0;  // floats per chunk
  int64_t remaining_ = 0;
};

// Reader: validates the header and size; chunk() copies one chunk's logits.
class LogitsFileReader {
 public:
  static StatusOr<std::unique_ptr<LogitsFileReader>> open(const std::string& path);
  ~LogitsFileReader();
  int64_t n_vocab() const { return n_vocab_; }
  const PerplexityPlan& plan() const { return plan_; }
  const std::vector<int32_t>& fed_tokens() const { return tokens_; }
  Status chunk(int64_t i, float* out) const;  // [n_scored, n_vocab]

 private:
  LogitsFileReader() = default;
  std::string path_;
  void* file_ = nullptr;
  int64_t n_vocab_ = 0;
  PerplexityPlan plan_;
  std::vector<int32_t> tokens_;
  int64_t data_offset_ = 0;
};

// True when the file starts with the GGUF magic (used to tell a base model from saved logits).
bool looks_like_gguf(const std::string& path);

}  // namespace frugal
