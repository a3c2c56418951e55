#include "compress/perplexity_kl.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <memory>

#include "base/check.h"

namespace frugal {

namespace {

struct LogSoftmax {
  double max = 0;
  double log_sum = 0;  // log(sum exp(x - max))
  int64_t argmax = 0;
};

LogSoftmax log_softmax_of(const float* x, int64_t n) {
  LogSoftmax r;
  r.max = x[0];
  for (int64_t i = 1; i < n; ++i) {
    if (x[i] > r.max) {
      r.max = x[i];
      r.argmax = i;
    }
  }
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp((double)x[i] - r.max);
  r.log_sum = std::log(s);
  return r;
}

// Mean and standard error of the mean.
ValueWithError mean_err(const std::vector<double>& v) {
  const double n = (double)v.size();
  double s = 0, s2 = 0;
  for (double x : v) {
    s += x;
    s2 += x * x;
  }
  const double m = s / n;
  const double var = std::max(0.0, s2 / n - m * m);
  return {m, v.size() > 1 ? std::sqrt(var / (n - 1)) : 0.0};
}

double covariance_of_means(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = (double)a.size();
  double sa = 0, sb = 0, sab = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sa += a[i];
    sb += b[i];
    sab += a[i] * b[i];
  }
  return (sab / n - (sa / n) * (sb / n)) / (n - 1);
}

__attribute__((format(printf, 2, 3))) void append_line(std::string& out, const char* fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  out += line;
  out += '\n';
}

}  // namespace

TokenKl token_kl(const float* logits, const float* base_logits, int64_t n_vocab, int32_t next) {
  FRUGAL_CHECK(n_vocab > 0 && next >= 0 && next < n_vocab);
  const LogSoftmax q = log_softmax_of(logits, n_vocab);
  const LogSoftmax p = log_softmax_of(base_logits, n_vocab);
  double kld = 0;
  for (int64_t i = 0; i < n_vocab; ++i) {
    const double lp = (double)base_logits[i] - p.max - p.log_sum;
    const double lq = (double)logits[i] - q.max - q.log_sum;
    kld += std::exp(lp) * (lp - lq);
  }
  TokenKl t;
  t.kld = kld;
  const double lq_next = (double)logits[next] - q.max - q.log_sum;
  const double lp_next = (double)base_logits[next] - p.max - p.log_sum;
  t.nll = -lq_next;
  t.nll_base = -lp_next;
  t.dp = std::exp(lq_next) - std::exp(lp_next);
  t.same_top = q.argmax == p.argmax;
  return t;
}

double percentile_sorted(const std::vector<double>& sorted, double fraction) {
  FRUGAL_CHECK(!sorted.empty());
  const double pos = fraction * (double)(sorted.size() - 1);
  const size_t lo = (size_t)std::floor(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double f = pos - (double)lo;
  return sorted[lo] + (sorted[hi] - sorted[lo]) * f;
}

KlStats summarize_kl(const std::vector<TokenKl>& tokens) {
  FRUGAL_CHECK(tokens.size() >= 2);
  KlStats s;
  s.count = (int64_t)tokens.size();
  const double n = (double)s.count;
  std::vector<double> nll, nll_base, diff, kld, dp, dp2;
  double same = 0;
  for (const TokenKl& t : tokens) {
    nll.push_back(t.nll);
    nll_base.push_back(t.nll_base);
    diff.push_back(t.nll - t.nll_base);
    kld.push_back(t.kld);
    dp.push_back(t.dp);
    dp2.push_back(t.dp * t.dp);
    same += t.same_top ? 1 : 0;
  }
  const ValueWithError mq = mean_err(nll), mb = mean_err(nll_base), md = mean_err(diff);
  s.ppl = {std::exp(mq.value), std::exp(mq.value) * mq.err};
  s.ppl_base = {std::exp(mb.value), std::exp(mb.value) * mb.err};
  const double cov = covariance_of_means(nll, nll_base);
  s.cor_ln_ppl = (mq.err > 0 && mb.err > 0) ? cov / (mq.err * mb.err) : 1.0;
  s.mean_ln_ratio = md;
  s.ppl_ratio = {std::exp(md.value), std::exp(md.value) * md.err};
  const double a = s.ppl.value, b = s.ppl_base.value;
  const double var_diff = a * a * mq.err * mq.err + b * b * mb.err * mb.err - 2 * a * b * cov;
  s.ppl_diff = {a - b, std::sqrt(std::max(0.0, var_diff))};

  s.kld = mean_err(kld);
  std::sort(kld.begin(), kld.end());
  s.kld_max = kld.back();
  s.kld_p999 = percentile_sorted(kld, 0.999);
  s.kld_p99 = percentile_sorted(kld, 0.99);
  s.kld_median = percentile_sorted(kld, 0.5);
  s.kld_p10 = percentile_sorted(kld, 0.10);
  s.kld_p5 = percentile_sorted(kld, 0.05);
  s.kld_p1 = percentile_sorted(kld, 0.01);
  s.kld_min = kld.front();

  s.dp = mean_err(dp);
  std::sort(dp.begin(), dp.end());
  s.dp_max = dp.back();
  s.dp_p999 = percentile_sorted(dp, 0.999);
  s.dp_p99 = percentile_sorted(dp, 0.99);
  s.dp_p95 = percentile_sorted(dp, 0.95);
  s.dp_p90 = percentile_sorted(dp, 0.90);
  s.dp_p75 = percentile_sorted(dp, 0.75);
  s.dp_median = percentile_sorted(dp, 0.5);
  s.dp_p25 = percentile_sorted(dp, 0.25);
  s.dp_p10 = percentile_sorted(dp, 0.10);
  s.dp_p5 = percentile_sorted(dp, 0.05);
  s.dp_p1 = percentile_sorted(dp, 0.01);
  s.dp_p01 = percentile_sorted(dp, 0.001);
  s.dp_min = dp.front();

  // RMS: sqrt(m2), error propagated from the standard error of m2 = mean(dp^2).
  const ValueWithError m2 = mean_err(dp2);
  const double rms = std::sqrt(m2.value);
  s.dp_rms = {rms, rms > 0 ? 0.5 * m2.err / rms : 0.0};
  const double f = same / n;
  s.same_top = {f, std::sqrt(std::max(0.0, f * (1 - f)) / (n - 1))};
  return s;
}

std::string format_kl_report(const KlStats& s) {
  std::string out;
  out += "====== Perplexity statistics ======\n";
  append_line(out, "Mean PPL(Q)                   : %10.6f ± %10.6f", s.ppl.value, s.ppl.err);
  append_line(out, "Mean PPL(base)                : %10.6f ± %10.6f", s.ppl_base.value, s.ppl_base.err);
  append_line(out, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%", 100.0 * s.cor_ln_ppl);
  append_line(out, "Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f", s.mean_ln_ratio.value, s.mean_ln_ratio.err);
  append_line(out, "Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f", s.ppl_ratio.value, s.ppl_ratio.err);
  append_line(out, "Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f", s.ppl_diff.value, s.ppl_diff.err);
  out += '\n';
  out += "====== KL divergence statistics ======\n";
  append_line(out, "Mean    KLD: %10.6f ± %10.6f", s.kld.value, s.kld.err);
  append_line(out, "Maximum KLD: %10.6f", s.kld_max);
  append_line(out, "99.9%%   KLD: %10.6f", s.kld_p999);
  append_line(out, "99.0%%   KLD: %10.6f", s.kld_p99);
  append_line(out, "Median  KLD: %10.6f", s.kld_median);
  append_line(out, "10.0%%   KLD: %10.6f", s.kld_p10);
  append_line(out, " 5.0%%   KLD: %10.6f", s.kld_p5);
  append_line(out, " 1.0%%   KLD: %10.6f", s.kld_p1);
  append_line(out, "Minimum KLD: %10.6f", s.kld_min);
  out += '\n';
  out += "====== Token probability statistics ======\n";
  append_line(out, "Mean    Δp: %6.3f ± %5.3f %%", 100 * s.dp.value, 100 * s.dp.err);
  append_line(out, "Maximum Δp: %6.3f%%", 100 * s.dp_max);
  append_line(out, "99.9%%   Δp: %6.3f%%", 100 * s.dp_p999);
  append_line(out, "99.0%%   Δp: %6.3f%%", 100 * s.dp_p99);
  append_line(out, "95.0%%   Δp: %6.3f%%", 100 * s.dp_p95);
  append_line(out, "90.0%%   Δp: %6.3f%%", 100 * s.dp_p90);
  append_line(out, "75.0%%   Δp: %6.3f%%", 100 * s.dp_p75);
  append_line(out, "Median  Δp: %6.3f%%", 100 * s.dp_median);
  append_line(out, "25.0%%   Δp: %6.3f%%", 100 * s.dp_p25);
  append_line(out, "10.0%%   Δp: %6.3f%%", 100 * s.dp_p10);
  append_line(out, " 5.0%%   Δp: %6.3f%%", 100 * s.dp_p5);
  append_line(out, " 1.0%%   Δp: %6.3f%%", 100 * s.dp_p1);
  append_line(out, " 0.1%%   Δp: %6.3f%%", 100 * s.dp_p01);
  append_line(out, "Minimum Δp: %6.3f%%", 100 * s.dp_min);
  append_line(out, "RMS Δp    : %6.3f ± %5.3f %%", 100 * s.dp_rms.value, 100 * s.dp_rms.err);
  append_line(out, "Same top p: %6.3f ± %5.3f %%", 100 * s.same_top.value, 100 * s.same_top.err);
  return out;
}

// ---- running a model against a base ----------------------------------------------------------------

StatusOr<BaseLogitsFn> base_logits_from_model(Model& base, Backend& backend, const PerplexityPlan& plan) {
  FRUGAL_RETURN_IF_ERROR(KvCache::supports(base.config(), DType::F32));
  auto kv = std::make_shared<KvCache>(base.config(), plan.n_ctx, DType::F32);
  return BaseLogitsFn([&base, &backend, plan, kv](int64_t, const std::vector<int32_t>& fed, float* out) {
    return chunk_logits(base, backend, *kv, fed, plan, out);
  });
}

BaseLogitsFn base_logits_from_file(const LogitsFileReader& file) {
  return [&file](int64_t chunk, const std::vector<int32_t>&, float* out) { return file.chunk(chunk, out); };
}

Status check_base_model(const std::string& model_name, const Model& model, const std::string& base_name,
                        const Model& base) {
  const int64_t v = model.config().n_vocab, vb = base.config().n_vocab;
  if (v != vb) {
    return invalid_argument("vocabulary mismatch: " + model_name + " has " + std::to_string(v) + " tokens, " +
                            base_name + " has " + std::to_string(vb));
  }
  return Status::Ok();
}

Status check_base_file(const std::string& model_name, int64_t n_vocab, const PerplexityPlan& plan,
                       const std::vector<int32_t>& fed, const std::string& base_name, const LogitsFileReader& f) {
  if (f.n_vocab() != n_vocab) {
    return invalid_argument("vocabulary mismatch: " + model_name + " has " + std::to_string(n_vocab) + " tokens, " +
                            base_name + " holds logits over " + std::to_string(f.n_vocab()));
  }
  if (f.plan().n_ctx != plan.n_ctx) {
    return invalid_argument(base_name + " was saved with a context of " + std::to_string(f.plan().n_ctx) +
                            " tokens; run with the same -c");
  }
  if (f.plan().n_chunks < plan.n_chunks) {
    return invalid_argument(base_name + " holds " + std::to_string(f.plan().n_chunks) + " chunks, this run needs " +
                            std::to_string(plan.n_chunks) + " (use --chunks)");
  }
  FRUGAL_CHECK((int64_t)fed.size() == plan.n_chunks * plan.n_ctx);
  if (!std::equal(fed.begin(), fed.end(), f.fed_tokens().begin())) {
    return invalid_argument("the tokens saved in " + base_name + " differ from this text's tokens under " +
                            model_name + " (another text or vocabulary)");
  }
  return Status::Ok();
}

StatusOr<KlResult> compute_kl(Model& model, Backend& backend, const std::vector<int32_t>& tokens,
                              const PerplexityOptions& options, const BaseLogitsFn& base,
                              const ChunkProgress& progress, const ChunkLogitsCallback& on_logits) {
  FRUGAL_ASSIGN_OR_RETURN(PerplexityPlan plan, plan_perplexity((int64_t)tokens.size(), options));
  const int64_t V = model.config().n_vocab;
  KlResult r;
  std::vector<float> base_logits((size_t)(plan.n_scored * V));
  auto compare = [&](int64_t c, const float* logits) -> Status {
    if (on_logits) FRUGAL_RETURN_IF_ERROR(on_logits(c, logits));
    const std::vector<int32_t> fed = chunk_tokens(tokens, plan, options, c);
    FRUGAL_RETURN_IF_ERROR(base(c, fed, base_logits.data()));
    for (int64_t j = 0; j < plan.n_scored; ++j) {
      const int32_t next = fed[(size_t)(plan.first + j + 1)];
      r.tokens.push_back(token_kl(logits + j * V, base_logits.data() + j * V, V, next));
    }
    return Status::Ok();
  };
  FRUGAL_ASSIGN_OR_RETURN(r.ppl, compute_perplexity(model, backend, tokens, options, progress, compare));
  r.stats = summarize_kl(r.tokens);
  return r;
}

}  // namespace frugal
