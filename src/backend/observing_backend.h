// ObservingBackend: a Backend decorator that forwards every op to an inner backend and, for matmul and
// matmul_multi, collects per-weight activation statistics: for each input column k of a weight the sum
// of x[t, k]^2 over all activation rows t that were multiplied with it, and the number of rows. This is
// what llama-imatrix collects (importance matrix, "imatrix") and what Wanda pruning needs
// (||X_k||_2 = sqrt(sum_sq[k])).
//
// Weights are recognised by address: the caller lists the tensors to observe as byte ranges (usually
// every tensor of the model's GgufFile: observed_tensors(const GgufFile&) in compress/imatrix.h, which
// backend/ cannot include). A matmul whose WeightView.data falls in a listed range (and whose K matches)
// adds to that tensor; other matmuls (weights not listed) are forwarded unobserved.
// A tensor with n_slices > 1 (a 3-D {K, N, n_slices} stack: MoE routed experts ffn_*_exps, MLA per-head
// attn_k_b / attn_v_b) keeps separate statistics per slice: slice s = (data - begin) / slice_bytes, so
// an expert that was never routed to has count 0.
//
//   auto ts = observed_tensors(model->gguf());
//   ObservingBackend obs(backend.get(), ts);
//   model->forward(obs, kv, tokens, pos, T, logits, LogitsMode::kAll);
//   const ActivationStats* s = obs.find("blk.0.ffn_down.weight");   // s->sum_sq[k], s->count[0]
//
// Statistics are accumulated in double, in job order (deterministic for a given sequence of calls).
// Each matmul job adds its T rows to count[slice] (a weight used through several row ranges with the
// same x counts that x several times; the mean sum_sq/count is unaffected).
// Thread-safety: like any Backend, one caller thread at a time; the inner backend may use its threads.
// The inner backend is not owned and must outlive this object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace frugal {

// One weight to observe: bytes [begin, begin + bytes) hold n_slices matrices of rows of K elements.
struct ObservedTensor {
  std::string name;
  const uint8_t* begin = nullptr;
  size_t bytes = 0;
  int64_t K = 0;         // row length (input columns)
  int64_t n_slices = 1;  // ne[2] of a 3-D tensor, else 1
};

struct ActivationStats {
  int64_t K = 0;
  int64_t n_slices = 1;
  std::vector<double> sum_sq;  // [n_slices * K]: sum over rows of x^2, slice-major
  std::vector<int64_t> count;  // [n_slices]: activation rows seen
  int64_t n_calls = 0;         // matmul jobs that touched this tensor

  // Mean of x^2 for (slice, column); 1.0 when the slice saw no rows (llama.cpp's convention).
  double mean_sq(int64_t slice, int64_t k) const {
    const int64_t c = count[(size_t)slice];
    return c > 0 ? sum_sq[(size_t)(slice * K + k)] / (double)c : 1.0;
  }
};

class ObservingBackend final : public Backend {
 public:
  // `inner` is not owned. Ranges in `tensors` must not overlap (checked).
  ObservingBackend(Backend* inner, std::vector<ObservedTensor> tensors);

  const char* name() const override { return inner_->name(); }
  void matmul(const WeightView& w, const float* x, int64_t T, float* y) override;
  void matmul_multi(const MatmulJob* jobs, int64_t n) override;
  // Records x for W's tensor; from then on matmuls with views into that tensor are not recorded (the
  // caller multiplies it in another form and note_input describes the textbook one).
  void note_input(const WeightView& w, const float* x, int64_t T) override;
  void get_rows(const WeightView& w, const int32_t* ids, int64_t T, float* out) override;
  void rms_norm(const float* x, const float* w, int64_t T, int64_t D, float eps, float* y) override;
  void rope(float* x, int64_t row_stride, const int32_t* pos, int64_t T, int64_t H, int64_t Dh,
            const RopeParams& p) override;
  void attention(const float* q, int64_t q_stride, const int32_t* pos, int64_t T, const KvView& kv,
                 const AttentionShape& s, float* out) override;
  void attention_multi(const float* q, int64_t q_stride, const int32_t* pos, const AttentionSeq* seqs,
                       int64_t n_seqs, const AttentionShape& s, float* out) override;
  void silu_mul(float* g, const float* u, int64_t n) override;
  void add(float* x, const float* y, int64_t n) override;
  void add_bias(float* x, const float* b, int64_t T, int64_t n) override;

  // Statistics by tensor name; only tensors that were used by at least one matmul appear.
  const std::map<std::string, ActivationStats>& stats() const { return stats_; }
  const ActivationStats* find(const std::string& name) const;
  // Forgets everything collected so far.
  void clear() { stats_.clear(); }
  // Matmuls whose weight was not in any observed range (e.g. weights converted at load time).
  int64_t unobserved_calls() const { return unobserved_; }

 private:
  void observe(const WeightView& w, const float* x, int64_t T, bool noted = false);

  Backend* inner_;
  std::vector<ObservedTensor> tensors_;  // sorted by begin
  std::map<std::string, ActivationStats> stats_;
  std::set<std::string> noted_;  // tensors observed through note_input only
  int64_t unobserved_ = 0;
};

}  // namespace frugal
