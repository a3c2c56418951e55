// ProfilingBackend: a Backend decorator that forwards every op to an inner backend and records, per op
// kind and shape, the number of calls, the wall time spent inside the op and the thread-pool dispatches
// (ThreadPool::n_dispatches) it made. `frugal bench --profile` wraps the runtime's backend in one; without
// the flag nothing of this is on the hot path.
//
// Keys name the op and its shape, so the matmuls of different weights are told apart:
//   "matmul K2048 N3072 T1", "matmul_multi x14 T1 (K2048 N1408 ..)", "attention_multi H16 T1",
//   "silu_mul", "rms_norm D2048", ...
// Time in model code between ops (routing, gathers, sums) is not seen here; a caller gets it as the
// forward's wall time minus total_seconds().
//
// Results are bit-identical to the inner backend's (every op is forwarded unchanged).
// Thread-safety: like any Backend, one caller thread at a time. inner and pool are not owned and must
// outlive this object; pool may be null (no dispatch counts).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "backend/backend.h"

namespace frugal {

struct OpProfile {
  int64_t calls = 0;
  double seconds = 0;
  uint64_t dispatches = 0;
};

class ProfilingBackend final : public Backend {
 public:
  ProfilingBackend(Backend* inner, ThreadPool* pool) : inner_(inner), pool_(pool) {}

  const char* name() const override { return inner_->name(); }
  void matmul(const WeightView& w, const float* x, int64_t T, float* y) override;
  void matmul_multi(const MatmulJob* jobs, int64_t n) override;
  void note_input(const WeightView& w, const float* x, int64_t T) override { inner_->note_input(w, x, T); }
  void get_rows(const WeightView& w, const int32_t* ids, int64_t T, float* out) override;
  void rms_norm(const float* x, const float* w, int64_t T, int64_t D, float eps, float* y) override;
  void rope(float* x, int64_t row_stride, const int32_t* pos, int64_t T, int64_t H, int64_t Dh,
            const RopeParams& p) override;
  void rope_kv_write(const float* k, int64_t k_stride, const float* v, int64_t v_stride, const int32_t* pos,
                     const int32_t* rows, int64_t T, int64_t rope_col, int64_t H, int64_t Dh, const RopeParams& p,
                     const KvWriteTarget& dst) override;
  void attention(const float* q, int64_t q_stride, const int32_t* pos, int64_t T, const KvView& kv,
                 const AttentionShape& s, float* out) override;
  void attention_multi(const float* q, int64_t q_stride, const int32_t* pos, const AttentionSeq* seqs,
                       int64_t n_seqs, const AttentionShape& s, float* out) override;
  void silu_mul(float* g, const float* u, int64_t n) override;
  void add(float* x, const float* y, int64_t n) override;
  void add_bias(float* x, const float* b, int64_t T, int64_t n) override;

  // Per key (see above); cleared by reset().
  const std::map<std::string, OpProfile>& ops() const { return ops_; }
  double total_seconds() const;
  uint64_t total_dispatches() const;
  void reset() { ops_.clear(); }

 private:
  // Runs fn, adding its time and dispatches to ops_[key].
  template <class Fn>
  void timed(const std::string& key, Fn&& fn);

  Backend* inner_;
  ThreadPool* pool_;
  std::map<std::string, OpProfile> ops_;
};

}  // namespace frugal
