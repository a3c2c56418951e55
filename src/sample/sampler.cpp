#include "sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

namespace frugal {

namespace {

// Strict total order: higher logit first, then lower id. Sorting with it gives one result on every
// standard library, which keeps seeded draws reproducible across platforms.
bool better(const Candidate& a, const Candidate& b) {
  if (a.logit != b.logit) return a.logit > b.logit;
  return a.id < b.id;
}

}  // namespace

Status SamplingParams::validate() const {
  if (std::isnan(temperature)) return invalid_argument("sampling: temperature is NaN");
  if (!(top_p >= 0.f && top_p <= 1.f)) return invalid_argument("sampling: top_p must be in [0, 1], got " + std::to_string(top_p));
  if (!(min_p >= 0.f && min_p <= 1.f)) return invalid_argument("sampling: min_p must be in [0, 1], got " + std::to_string(min_p));
  if (!(repeat_penalty > 0.f)) {
    return invalid_argument("sampling: repeat_penalty must be > 0, got " + std::to_string(repeat_penalty));
  }
  if (std::isnan(presence_penalty) || std::isnan(frequency_penalty)) {
    return invalid_argument("sampling: presence/frequency penalty is NaN");
  }
  if (penalty_last_n < -1) {
    return invalid_argument("sampling: penalty_last_n must be >= -1, got " + std::to_string(penalty_last_n));
  }
  return Status::Ok();
}

std::string SamplingParams::summary() const {
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "penalties(last_n=%d repeat=%.3f freq=%.3f presence=%.3f) -> top_k=%d -> top_p=%.3f -> "
                "min_p=%.3f -> temp=%.3f -> draw(seed=%llu)",
                penalty_last_n, repeat_penalty, frequency_penalty, presence_penalty, top_k, top_p, min_p,
                temperature, (unsigned long long)seed);
  return buf;
}

uint64_t random_seed() {
  std::random_device rd;
  return ((uint64_t)rd() << 32) ^ (uint64_t)rd();
}

namespace sampling {

void apply_penalties(std::vector<Candidate>& cands, const std::unordered_map<int32_t, int32_t>& counts,
                     float repeat, float frequency, float presence) {
  for (const auto& [id, count] : counts) {
    if (id < 0 || (size_t)id >= cands.size() || count <= 0) continue;
    Candidate& c = cands[(size_t)id];
    FRUGAL_CHECK(c.id == id);
    c.logit = c.logit <= 0.f ? c.logit * repeat : c.logit / repeat;
    c.logit -= (float)count * frequency + presence;
  }
}

void top_k(std::vector<Candidate>& cands, int32_t k, bool* sorted) {
  if (k <= 0 || cands.empty()) return;
  const size_t n = std::min(cands.size(), (size_t)k);
  if (!*sorted) {
    // O(V + k log k): select the k best, then order only those.
    if (n < cands.size()) std::nth_element(cands.begin(), cands.begin() + (ptrdiff_t)n, cands.end(), better);
    std::sort(cands.begin(), cands.begin() + (ptrdiff_t)n, better);
  }
  cands.resize(n);
  *sorted = true;
}

void softmax(std::vector<Candidate>& cands) {
  if (cands.empty()) return;
  float max_logit = cands[0].logit;
  for (const Candidate& c : cands) max_logit = std::max(max_logit, c.logit);
  double sum = 0;
  for (Candidate& c : cands) {
    c.p = std::exp(c.logit - max_logit);
    sum += c.p;
  }
  const float inv = (float)(1.0 / sum);
  for (Candidate& c : cands) c.p *= inv;
}

void top_p(std::vector<Candidate>& cands, float p, bool* sorted) {
  if (p >= 1.f || cands.empty()) return;
  softmax(cands);  // probabilities over every current candidate, order-independent
  const size_t n = cands.size();
  // Sort a growing prefix only: the nucleus is usually a small part of the vocabulary.
  size_t m = *sorted ? n : std::min(n, (size_t)256);
  for (;;) {
    if (!*sorted) {
      std::partial_sort(cands.begin(), cands.begin() + (ptrdiff_t)m, cands.end(), better);
      if (m == n) *sorted = true;
    }
    double cum = 0;
    for (size_t i = 0; i < m; ++i) {
      cum += cands[i].p;
      if (cum >= p) {
        cands.resize(i + 1);
        *sorted = true;
        return;
      }
    }
    if (m == n) return;  // rounding: the whole set is the nucleus
    m = std::min(n, m * 2);
  }
}

void min_p(std::vector<Candidate>& cands, float p) {
  if (p <= 0.f || cands.empty()) return;
  float max_logit = cands[0].logit;
  for (const Candidate& c : cands) max_logit = std::max(max_logit, c.logit);
  const float threshold = max_logit + std::log(p);
  // Stable: keeps the current order (sorted or id order).
  auto end = std::remove_if(cands.begin(), cands.end(), [&](const Candidate& c) { return c.logit < threshold; });
  cands.erase(end, cands.end());
}

void temperature(std::vector<Candidate>& cands, float t) {
  if (cands.empty()) return;
  if (t <= 0.f) {
    size_t best = 0;
    for (size_t i = 1; i < cands.size(); ++i) {
      if (better(cands[i], cands[best])) best = i;
    }
    const Candidate keep = cands[best];
    cands.assign(1, keep);
    return;
  }
  for (Candidate& c : cands) c.logit /= t;
}

size_t draw(const std::vector<Candidate>& cands, double u) {
  FRUGAL_CHECK(!cands.empty());
  double total = 0;
  for (const Candidate& c : cands) total += c.p;
  const double target = u * total;
  double cum = 0;
  for (size_t i = 0; i < cands.size(); ++i) {
    cum += cands[i].p;
    if (cum > target) return i;
  }
  // Rounding left target at the very end: take the last candidate with non-zero probability.
  for (size_t i = cands.size(); i-- > 0;) {
    if (cands[i].p > 0.f) return i;
  }
  return 0;
}

int32_t argmax(const float* logits, int64_t n) {
  FRUGAL_CHECK(n > 0);
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;  // strict: ties keep the lowest id
  }
  return (int32_t)best;
}

}  // namespace sampling

Sampler::Sampler(const SamplingParams& params, int64_t n_vocab)
    : params_(params), n_vocab_(n_vocab), rng_(params.seed) {
  FRUGAL_CHECK(n_vocab > 0);
  FRUGAL_CHECK_MSG(params.validate().ok(), params.validate().message().c_str());
}

bool Sampler::penalties_active() const {
  return params_.penalty_last_n != 0 && !counts_.empty() &&
         (params_.repeat_penalty != 1.f || params_.frequency_penalty != 0.f || params_.presence_penalty != 0.f);
}

int32_t Sampler::sample(const float* logits) {
  const bool greedy = params_.temperature <= 0.f;
  if (greedy && !penalties_active()) return sampling::argmax(logits, n_vocab_);

  cands_.resize((size_t)n_vocab_);
  for (int64_t i = 0; i < n_vocab_; ++i) cands_[(size_t)i] = Candidate{(int32_t)i, logits[i], 0.f};
  if (penalties_active()) {
    sampling::apply_penalties(cands_, counts_, params_.repeat_penalty, params_.frequency_penalty,
                              params_.presence_penalty);
  }
  if (greedy) {
    sampling::temperature(cands_, 0.f);  // keeps the arg-max only
    return cands_[0].id;
  }
  bool sorted = false;
  sampling::top_k(cands_, params_.top_k, &sorted);
  sampling::top_p(cands_, params_.top_p, &sorted);
  sampling::min_p(cands_, params_.min_p);
  sampling::temperature(cands_, params_.temperature);
  sampling::softmax(cands_);
  return cands_[sampling::draw(cands_, rng_.next_double())].id;
}

void Sampler::accept(int32_t id) {
  if (params_.penalty_last_n == 0) return;
  ++counts_[id];
  if (params_.penalty_last_n < 0) return;  // unbounded window: counts only
  window_.push_back(id);
  if ((int64_t)window_.size() > params_.penalty_last_n) {
    const int32_t old = window_.front();
    window_.pop_front();
    auto it = counts_.find(old);
    if (--it->second == 0) counts_.erase(it);
  }
}

void Sampler::reset() {
  window_.clear();
  counts_.clear();
  rng_.reseed(params_.seed);
}

}  // namespace frugal
