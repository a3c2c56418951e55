#include "backend/profiling_backend.h"

#include <string>

#include "base/thread_pool.h"
#include "base/timer.h"

namespace frugal {

namespace {

std::string num(int64_t v) { return std::to_string(v); }

std::string shape(const WeightView& w) {
  return std::string(dtype_name(w.type)) + " K" + num(w.K) + " N" + num(w.N);
}

}  // namespace

template <class Fn>
void ProfilingBackend::timed(const std::string& key, Fn&& fn) {
  const uint64_t d0 = pool_ ? pool_->n_dispatches() : 0;
  const double t0 = now_seconds();
  fn();
  const double t1 = now_seconds();
  OpProfile& p = ops_[key];
  ++p.calls;
  p.seconds += t1 - t0;
  if (pool_) p.dispatches += pool_->n_dispatches() - d0;
}

double ProfilingBackend::total_seconds() const {
  double s = 0;
  for (const auto& [k, p] : ops_) s += p.seconds;
  return s;
}

uint64_t ProfilingBackend::total_dispatches() const {
  uint64_t s = 0;
  for (const auto& [k, p] : ops_) s += p.dispatches;
  return s;
}

void ProfilingBackend::matmul(const WeightView& w, const float* x, int64_t T, float* y) {
  timed("matmul " + shape(w) + " T" + num(T), [&] { inner_->matmul(w, x, T, y); });
}

void ProfilingBackend::matmul_multi(const MatmulJob* jobs, int64_t n) {
  int64_t rows = 0;
  for (int64_t i = 0; i < n; ++i) rows += jobs[i].T;
  std::string key = "matmul_multi x" + num(n) + " rows" + num(rows);
  if (n > 0) key += " (" + shape(jobs[0].w) + (n > 1 ? " ..)" : ")");
  timed(key, [&] { inner_->matmul_multi(jobs, n); });
}

void ProfilingBackend::get_rows(const WeightView& w, const int32_t* ids, int64_t T, float* out) {
  timed("get_rows", [&] { inner_->get_rows(w, ids, T, out); });
}

void ProfilingBackend::rms_norm(const float* x, const float* w, int64_t T, int64_t D, float eps, float* y) {
  timed("rms_norm D" + num(D), [&] { inner_->rms_norm(x, w, T, D, eps, y); });
}

void ProfilingBackend::rope(float* x, int64_t row_stride, const int32_t* pos, int64_t T, int64_t H, int64_t Dh,
                            const RopeParams& p) {
  timed("rope H" + num(H), [&] { inner_->rope(x, row_stride, pos, T, H, Dh, p); });
}

void ProfilingBackend::rope_kv_write(const float* k, int64_t k_stride, const float* v, int64_t v_stride,
                                     const int32_t* pos, const int32_t* rows, int64_t T, int64_t rope_col, int64_t H,
                                     int64_t Dh, const RopeParams& p, const KvWriteTarget& dst) {
  timed("rope_kv_write", [&] { inner_->rope_kv_write(k, k_stride, v, v_stride, pos, rows, T, rope_col, H, Dh, p, dst); });
}

void ProfilingBackend::attention(const float* q, int64_t q_stride, const int32_t* pos, int64_t T, const KvView& kv,
                                 const AttentionShape& s, float* out) {
  timed("attention H" + num(s.H) + " Dk" + num(s.Dh_k), [&] { inner_->attention(q, q_stride, pos, T, kv, s, out); });
}

void ProfilingBackend::attention_multi(const float* q, int64_t q_stride, const int32_t* pos, const AttentionSeq* seqs,
                                       int64_t n_seqs, const AttentionShape& s, float* out) {
  timed("attention_multi H" + num(s.H) + " Dk" + num(s.Dh_k),
        [&] { inner_->attention_multi(q, q_stride, pos, seqs, n_seqs, s, out); });
}

void ProfilingBackend::silu_mul(float* g, const float* u, int64_t n) {
  timed("silu_mul", [&] { inner_->silu_mul(g, u, n); });
}

void ProfilingBackend::add(float* x, const float* y, int64_t n) {
  timed("add", [&] { inner_->add(x, y, n); });
}

void ProfilingBackend::add_bias(float* x, const float* b, int64_t T, int64_t n) {
  timed("add_bias", [&] { inner_->add_bias(x, b, T, n); });
}

}  // namespace frugal
