#include "backend/observing_backend.h"

#include <algorithm>

#include "base/check.h"

namespace frugal {

ObservingBackend::ObservingBackend(Backend* inner, std::vector<ObservedTensor> tensors)
    : inner_(inner), tensors_(std::move(tensors)) {
  FRUGAL_CHECK(inner_ != nullptr);
  std::sort(tensors_.begin(), tensors_.end(),
            [](const ObservedTensor& a, const ObservedTensor& b) { return a.begin < b.begin; });
  for (size_t i = 0; i < tensors_.size(); ++i) {
    FRUGAL_CHECK(tensors_[i].K > 0 && tensors_[i].n_slices > 0);
    if (i > 0) FRUGAL_CHECK(tensors_[i - 1].begin + tensors_[i - 1].bytes <= tensors_[i].begin);
  }
}

const ActivationStats* ObservingBackend::find(const std::string& name) const {
  auto it = stats_.find(name);
  return it == stats_.end() ? nullptr : &it->second;
}

void ObservingBackend::observe(const WeightView& w, const float* x, int64_t T, bool noted) {
  // Last range whose begin <= w.data.
  auto it = std::upper_bound(tensors_.begin(), tensors_.end(), w.data,
                             [](const uint8_t* p, const ObservedTensor& t) { return p < t.begin; });
  if (it == tensors_.begin() || T <= 0) {
    ++unobserved_;
    return;
  }
  const ObservedTensor& t = *(it - 1);
  const size_t off = (size_t)(w.data - t.begin);
  if (off >= t.bytes || w.K != t.K) {
    ++unobserved_;
    return;
  }
  if (noted) {
    noted_.insert(t.name);
  } else if (noted_.count(t.name)) {
    return;
  }
  ActivationStats& s = stats_[t.name];
  if (s.sum_sq.empty()) {
    s.K = t.K;
    s.n_slices = t.n_slices;
    s.sum_sq.assign((size_t)(t.K * t.n_slices), 0.0);
    s.count.assign((size_t)t.n_slices, 0);
  }
  const size_t slice_bytes = t.bytes / (size_t)t.n_slices;
  const int64_t slice = (int64_t)(off / slice_bytes);
  double* acc = s.sum_sq.data() + slice * t.K;
  for (int64_t r = 0; r < T; ++r) {
    const float* xr = x + r * t.K;
    for (int64_t k = 0; k < t.K; ++k) acc[k] += (double)xr[k] * (double)xr[k];
  }
  s.count[(size_t)slice] += T;
  ++s.n_calls;
}

void ObservingBackend::note_input(const WeightView& w, const float* x, int64_t T) {
  observe(w, x, T, /*noted=*/true);
  inner_->note_input(w, x, T);
}

void ObservingBackend::matmul(const WeightView& w, const float* x, int64_t T, float* y) {
  observe(w, x, T);
  inner_->matmul(w, x, T, y);
}

void ObservingBackend::matmul_multi(const MatmulJob* jobs, int64_t n) {
  for (int64_t i = 0; i < n; ++i) observe(jobs[i].w, jobs[i].x, jobs[i].T);
  inner_->matmul_multi(jobs, n);
}

void ObservingBackend::get_rows(const WeightView& w, const int32_t* ids, int64_t T, float* out) {
  inner_->get_rows(w, ids, T, out);
}
void ObservingBackend::rms_norm(const float* x, const float* w, int64_t T, int64_t D, float eps, float* y) {
  inner_->rms_norm(x, w, T, D, eps, y);
}
void ObservingBackend::rope(float* x, int64_t row_stride, const int32_t* pos, int64_t T, int64_t H, int64_t Dh,
                            const RopeParams& p) {
  inner_->rope(x, row_stride, pos, T, H, Dh, p);
}
void ObservingBackend::attention(const float* q, int64_t q_stride, const int32_t* pos, int64_t T, const KvView& kv,
                                 const AttentionShape& s, float* out) {
  inner_->attention(q, q_stride, pos, T, kv, s, out);
}
void ObservingBackend::attention_multi(const float* q, int64_t q_stride, const int32_t* pos, const AttentionSeq* seqs,
                                       int64_t n_seqs, const AttentionShape& s, float* out) {
  inner_->attention_multi(q, q_stride, pos, seqs, n_seqs, s, out);
}
void ObservingBackend::silu_mul(float* g, const float* u, int64_t n) { inner_->silu_mul(g, u, n); }
void ObservingBackend::add(float* x, const float* y, int64_t n) { inner_->add(x, y, n); }
void ObservingBackend::add_bias(float* x, const float* b, int64_t T, int64_t n) { inner_->add_bias(x, b, T, n); }

}  // namespace frugal
