// CpuBackend: SIMD kernels picked at run time (matmul: backend/matmul.cpp), every op parallel over the
// engine's ThreadPool. Non-matmul ops run the same scalar row kernels as RefBackend (ops_scalar.h), split
// over rows/heads, so their results are bit-identical to the reference; attention has an AVX2 twin
// (cpu/attention_avx2.cpp) that differs from the scalar one only in summation order.
#include <algorithm>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/attention_avx2.h"
#include "backend/matmul.h"
#include "backend/ops_scalar.h"
#include "base/check.h"
#include "base/thread_pool.h"

namespace frugal {

namespace {

class CpuBackend final : public Backend {
 public:
  CpuBackend(ThreadPool* pool, Isa isa) : pool_(pool), isa_(isa) {}
  const char* name() const override { return isa_name(isa_); }

  void matmul(const WeightView& w, const float* x, int64_t T, float* y) override {
    matmul_cpu(pool_, isa_, w, x, T, y, scratch_);
  }

  void matmul_multi(const MatmulJob* jobs, int64_t n) override { matmul_cpu_multi(pool_, isa_, jobs, n, scratch_); }

  void get_rows(const WeightView& w, const int32_t* ids, int64_t T, float* out) override {
    pool_->parallel_range(T, [&](int64_t b, int64_t e, int) { frugal::get_rows(w, ids + b, e - b, out + b * w.K); });
  }

  void rms_norm(const float* x, const float* w, int64_t T, int64_t D, float eps, float* y) override {
    pool_->parallel_range(T, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) ops::rms_norm_row(x + t * D, w, D, eps, y + t * D);
    });
  }

  void rope(float* x, int64_t row_stride, const int32_t* pos, int64_t T, int64_t H, int64_t Dh,
            const RopeParams& p) override {
    pool_->parallel_range(T, [&](int64_t b, int64_t e, int) {
      std::vector<float> cs((size_t)p.n_dims);
      for (int64_t t = b; t < e; ++t) {
        ops::rope_cache(pos[t], p, cs.data());
        for (int64_t h = 0; h < H; ++h) ops::rope_head(x + t * row_stride + h * Dh, cs.data(), p);
      }
    });
  }

  void attention(const float* q, int64_t q_stride, const int32_t* pos, int64_t T, const KvView& kv,
                 const AttentionShape& s, float* out) override {
    const int64_t group = s.H / s.Hkv;
    const int n_threads = pool_->n_threads();
    if ((int)scores_.size() < n_threads) scores_.resize(n_threads);
    for (auto& v : scores_) v.resize((size_t)std::max<int64_t>(kv.n_kv, 1));
    pool_->parallel_for(T * s.H, [&](int64_t task, int thread) {
      const int64_t t = task / s.H, h = task % s.H;
      const int64_t n_visible = std::min<int64_t>(pos[t] + 1, kv.n_kv);
      const auto head = isa_ >= Isa::kAvx2 ? ops::attention_head_avx2 : ops::attention_head;
      head(q + t * q_stride + h * s.Dh_k, kv, h / group, n_visible, s, scores_[thread].data(),
           out + (t * s.H + h) * s.Dh_v);
    });
  }

  void attention_multi(const float* q, int64_t q_stride, const int32_t* pos, const AttentionSeq* seqs,
                       int64_t n_seqs, const AttentionShape& s, float* out) override {
    const int64_t group = s.H / s.Hkv;
    const int n_threads = pool_->n_threads();
    int64_t T = 0, max_kv = 1;
    seq_of_.clear();
    for (int64_t i = 0; i < n_seqs; ++i) {
      FRUGAL_CHECK(seqs[i].t0 == T);
      T += seqs[i].n;
      max_kv = std::max(max_kv, seqs[i].kv.n_kv);
      seq_of_.insert(seq_of_.end(), (size_t)seqs[i].n, (int32_t)i);
    }
    if ((int)scores_.size() < n_threads) scores_.resize(n_threads);
    for (auto& v : scores_)
      if ((int64_t)v.size() < max_kv) v.resize((size_t)max_kv);
    const auto head = isa_ >= Isa::kAvx2 ? ops::attention_head_avx2 : ops::attention_head;
    pool_->parallel_for(T * s.H, [&](int64_t task, int thread) {
      const int64_t t = task / s.H, h = task % s.H;
      const KvView& kv = seqs[seq_of_[(size_t)t]].kv;
      const int64_t n_visible = std::min<int64_t>(pos[t] + 1, kv.n_kv);
      head(q + t * q_stride + h * s.Dh_k, kv, h / group, n_visible, s, scores_[thread].data(),
           out + (t * s.H + h) * s.Dh_v);
    });
  }

  void silu_mul(float* g, const float* u, int64_t n) override {
    pool_->parallel_range(n, [&](int64_t b, int64_t e, int) { ops::silu_mul(g + b, u + b, e - b); });
  }

  void add(float* x, const float* y, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
  }

  void add_bias(float* x, const float* b, int64_t T, int64_t n) override {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < n; ++i) x[t * n + i] += b[i];
  }

 private:
  ThreadPool* pool_;
  Isa isa_;
  MatmulScratch scratch_;
  std::vector<std::vector<float>> scores_;
  std::vector<int32_t> seq_of_;  // attention_multi: token -> sequence
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(ThreadPool* pool, Isa isa) {
  return std::make_unique<CpuBackend>(pool, isa);
}

}  // namespace frugal
