// Sampler: turns one row of logits into a token id, in one fixed, documented order (llama.cpp's default
// chain without the stages frugal does not offer):
//
//   penalties -> top-k -> top-p -> min-p -> temperature -> draw
//
// * penalties: over the last `penalty_last_n` accepted tokens (0 = off, -1 = every token accepted since
//   the last reset()). For a token seen c > 0 times in that window:
//     logit = logit <= 0 ? logit * repeat_penalty : logit / repeat_penalty;
//     logit -= c * frequency_penalty + presence_penalty.
//   Like llama.cpp's CLI, callers accept() the prompt tokens too, so the window spans the prompt tail.
// * top-k: k <= 0 is a no-op; else keep the k largest logits.
// * top-p: p >= 1 is a no-op; else softmax over the candidates left, keep the shortest prefix (by logit,
//   descending) whose cumulative probability is >= p (at least one token).
// * min-p: p <= 0 is a no-op; else keep candidates with logit >= max_logit + ln(p) (prob >= p * max_prob).
// * temperature: t <= 0 means greedy: the arg-max (ties -> lowest id) is returned without a draw; else
//   logit /= t. As in llama.cpp, top-k/top-p/min-p see the untempered logits.
// * draw: softmax over the survivors (f32, max subtracted), one uniform number u in [0, 1) from frugal's
//   own PRNG (xoshiro256**, seeded through splitmix64), first candidate whose cumulative probability
//   exceeds u * sum. Candidates are ordered by (logit desc, id asc), a strict total order, so the result
//   does not depend on the standard library's sort: the same seed gives the same tokens everywhere.
//
// Thread-safety: a Sampler belongs to one sequence; not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/rng.h"
#include "base/status.h"

namespace frugal {

inline constexpr uint64_t kDefaultSeed = 0x5eed;

struct SamplingParams {
  float temperature = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;     // 1 = off
  float presence_penalty = 0.0f;   // 0 = off
  float frequency_penalty = 0.0f;  // 0 = off
  int32_t penalty_last_n = 64;     // 0 = off, -1 = unbounded
  uint64_t seed = kDefaultSeed;

  // Errors (naming the field) for values that make no sense: temperature/top_p/min_p NaN, top_p or min_p
  // outside [0, 1], repeat_penalty <= 0, penalty_last_n < -1.
  Status validate() const;
  std::string summary() const;  // one line for logs
};

// A seed from the OS entropy source (for "--seed -1").
uint64_t random_seed();

struct Candidate {
  int32_t id;
  float logit;
  float p;  // probability; valid only after a stage that computes it (softmax)
};

// The individual stages, exposed for tests. `sorted` tells whether cands is already ordered by
// (logit desc, id asc); stages that sort set it.
namespace sampling {
// Applies penalties to cands indexed by id (cands[i].id == i, i.e. before any other stage).
void apply_penalties(std::vector<Candidate>& cands, const std::unordered_map<int32_t, int32_t>& counts,
                     float repeat, float frequency, float presence);
void top_k(std::vector<Candidate>& cands, int32_t k, bool* sorted);
void top_p(std::vector<Candidate>& cands, float p, bool* sorted);
void min_p(std::vector<Candidate>& cands, float p);
void temperature(std::vector<Candidate>& cands, float t);
// Fills cands[i].p with the softmax of the logits (f32, max subtracted).
void softmax(std::vector<Candidate>& cands);
// Index into cands of the draw for uniform u in [0, 1) (probabilities must be filled).
size_t draw(const std::vector<Candidate>& cands, double u);
// Arg-max of logits[0, n); ties -> lowest id.
int32_t argmax(const float* logits, int64_t n);
}  // namespace sampling

class Sampler {
 public:
  // params must validate(); n_vocab > 0.
  Sampler(const SamplingParams& params, int64_t n_vocab);

  // Samples one id from logits[n_vocab]. Does not accept it (call accept()).
  int32_t sample(const float* logits);
  // Feeds the penalty window (prompt tokens and sampled tokens alike).
  void accept(int32_t id);
  // Empties the penalty window and restarts the PRNG from the seed.
  void reset();

  const SamplingParams& params() const { return params_; }

 private:
  bool penalties_active() const;

  SamplingParams params_;
  int64_t n_vocab_;
  Rng rng_;
  std::deque<int32_t> window_;
  std::unordered_map<int32_t, int32_t> counts_;  // id -> occurrences in window_
  std::vector<Candidate> cands_;                  // scratch, reused between calls
};

}  // namespace frugal
