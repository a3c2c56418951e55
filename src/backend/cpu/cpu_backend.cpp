// CpuBackend: SIMD kernels picked at run time (matmul: backend/matmul.cpp), every op parallel over the
// engine's ThreadPool. Non-matmul ops run the same row kernels as RefBackend (ops_scalar.h; RMSNorm and
// SiLU through their AVX2/AVX-512 twins in cpu/elementwise_*.cpp, which compute the same bits), split
// over rows/heads, so their results are bit-identical to the reference; attention has flash-style
// (online softmax) AVX-512 and AVX2 kernels (cpu/attention_avx512.cpp, cpu/attention_flash_avx2.cpp) that
// differ from the scalar one only in summation order and in their exp polynomial.
#include <algorithm>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/attention_avx512.h"
#include "backend/cpu/elementwise.h"
#include "backend/kv_write.h"
#include "backend/matmul.h"
#include "backend/ops_scalar.h"
#include "base/check.h"
#include "base/thread_pool.h"

namespace frugal {

namespace {

constexpr int64_t kMinParallelElementwise = 32768;  // elements below which silu_mul stays on the caller

using RmsNormRowFn = void (*)(const float*, const float*, int64_t, float, float*);
using SiluMulFn = void (*)(float*, const float*, int64_t);

class CpuBackend final : public Backend {
 public:
  CpuBackend(ThreadPool* pool, Isa isa, size_t repack_limit) : pool_(pool), isa_(isa) {
    scratch_.set_repack(repack_limit > 0, repack_limit);
    if (isa_ == Isa::kAvx512) {
      rms_norm_row_ = &ops::rms_norm_row_avx512;
      silu_mul_ = &ops::silu_mul_avx512;
    } else if (isa_ == Isa::kAvx2) {
      rms_norm_row_ = &ops::rms_norm_row_avx2;
      silu_mul_ = &ops::silu_mul_avx2;
    }
  }
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
      for (int64_t t = b; t < e; ++t) rms_norm_row_(x + t * D, w, D, eps, y + t * D);
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

  void rope_kv_write(const float* k, int64_t k_stride, const float* v, int64_t v_stride, const int32_t* pos,
                     const int32_t* rows, int64_t T, int64_t rope_col, int64_t H, int64_t Dh, const RopeParams& p,
                     const KvWriteTarget& dst) override {
    pool_->parallel_range(T, [&](int64_t b, int64_t e, int) {
      std::vector<float> tmp((size_t)dst.k_width);
      ops::rope_kv_write_rows(k, k_stride, v, v_stride, pos, rows, b, e, rope_col, H, Dh, p, dst, tmp.data());
    });
  }

  void attention(const float* q, int64_t q_stride, const int32_t* pos, int64_t T, const KvView& kv,
                 const AttentionShape& s, float* out) override {
    const AttentionSeq seq{0, T, kv};
    attention_multi(q, q_stride, pos, &seq, 1, s, out);
  }

  void attention_multi(const float* q, int64_t q_stride, const int32_t* pos, const AttentionSeq* seqs,
                       int64_t n_seqs, const AttentionShape& s, float* out) override {
    if (isa_ >= Isa::kAvx2) return attention_flash(q, q_stride, pos, seqs, n_seqs, s, out);
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
    pool_->parallel_for(T * s.H, [&](int64_t task, int thread) {
      const int64_t t = task / s.H, h = task % s.H;
      const KvView& kv = seqs[seq_of_[(size_t)t]].kv;
      const int64_t n_visible = std::min<int64_t>(pos[t] + 1, kv.n_kv);
      ops::attention_head(q + t * q_stride + h * s.Dh_k, kv, h / group, n_visible, s, scores_[thread].data(),
                          out + (t * s.H + h) * s.Dh_v);
    });
  }

  void silu_mul(float* g, const float* u, int64_t n) override {
    // elementwise: the split does not change values; a decode step's few thousand are not worth a dispatch
    if (n < kMinParallelElementwise) return silu_mul_(g, u, n);
    pool_->parallel_range(n, [&](int64_t b, int64_t e, int) { silu_mul_(g + b, u + b, e - b); });
  }

  void add(float* x, const float* y, int64_t n) override {
    // memory-bound: measured slower split over 2 threads (pp512: 16 vs 12 ms per prompt)
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
  }

  void add_bias(float* x, const float* b, int64_t T, int64_t n) override {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < n; ++i) x[t * n + i] += b[i];
  }

 private:
  // A unit of flash-attention work: tokens [t0, t0 + nt) of sequence seq, query heads [h0, h0 + nh) of
  // kv head g's group (h0 relative to the group).
  struct FlashTile {
    int32_t seq, g, t0, nt, h0, nh;
  };

  // AVX2 / AVX-512 path: tiles over (sequence, kv head, token block, head block), each tile one flash kernel call
  // that converts every K/V row once for all its queries. Tile shapes only decide which queries share the
  // conversion; each query's arithmetic is independent of them (batch invariance).
  void attention_flash(const float* q, int64_t q_stride, const int32_t* pos, const AttentionSeq* seqs, int64_t n_seqs,
                       const AttentionShape& s, float* out) {
    const int64_t group = s.H / s.Hkv;
    const int n_threads = pool_->n_threads();
    const int64_t tok_per_tile = std::max<int64_t>(1, 32 / group);
    int64_t n_tiles = 0;
    for (int64_t i = 0; i < n_seqs; ++i) n_tiles += s.Hkv * ((seqs[i].n + tok_per_tile - 1) / tok_per_tile);
    int64_t split = 1;  // split a group's heads when there are too few tiles to keep every thread busy
    while (n_tiles * split < 2 * n_threads && split < group) split *= 2;
    const int64_t heads_per_tile = (group + split - 1) / split;
    tiles_.clear();
    for (int64_t i = 0; i < n_seqs; ++i) {
      const int64_t n = seqs[i].n;
      // later tokens see more keys: queue them first so the dynamic task claims balance the threads
      for (int64_t tb = ((n - 1) / tok_per_tile) * tok_per_tile; tb >= 0; tb -= tok_per_tile)
        for (int64_t g = 0; g < s.Hkv; ++g)
          for (int64_t h0 = 0; h0 < group; h0 += heads_per_tile)
            tiles_.push_back({(int32_t)i, (int32_t)g, (int32_t)(seqs[i].t0 + tb),
                              (int32_t)std::min(tok_per_tile, n - tb), (int32_t)h0,
                              (int32_t)std::min(heads_per_tile, group - h0)});
    }
    if ((int)flash_.size() < n_threads) flash_.resize((size_t)n_threads);
    if ((int)flash_q_.size() < n_threads) flash_q_.resize((size_t)n_threads);
    pool_->parallel_for((int64_t)tiles_.size(), [&](int64_t task, int thread) {
      const FlashTile& tl = tiles_[(size_t)task];
      const KvView& kv = seqs[tl.seq].kv;
      std::vector<ops::FlashQuery>& qs = flash_q_[(size_t)thread];
      qs.clear();
      for (int64_t t = tl.t0; t < tl.t0 + tl.nt; ++t) {
        const int64_t n_visible = std::min<int64_t>(pos[t] + 1, kv.n_kv);
        for (int64_t h = tl.g * group + tl.h0; h < tl.g * group + tl.h0 + tl.nh; ++h)
          qs.push_back({q + t * q_stride + h * s.Dh_k, out + (t * s.H + h) * s.Dh_v, n_visible});
      }
      const auto kernel = isa_ >= Isa::kAvx512 ? ops::attention_flash_avx512 : ops::attention_flash_avx2;
      kernel(qs.data(), (int64_t)qs.size(), kv, tl.g, s, &flash_[(size_t)thread]);
    });
  }

  ThreadPool* pool_;
  Isa isa_;
  RmsNormRowFn rms_norm_row_ = &ops::rms_norm_row;  // scalar, or its AVX2 / AVX-512 twin (same bits)
  SiluMulFn silu_mul_ = &ops::silu_mul;
  MatmulScratch scratch_;
  std::vector<std::vector<float>> scores_;
  std::vector<int32_t> seq_of_;  // attention_multi: token -> sequence
  std::vector<FlashTile> tiles_;
  std::vector<ops::FlashScratch> flash_;              // per thread
  std::vector<std::vector<ops::FlashQuery>> flash_q_;  // per thread
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(ThreadPool* pool, Isa isa, size_t repack_limit) {
  return std::make_unique<CpuBackend>(pool, isa, repack_limit);
}

}  // namespace frugal
