// RefBackend: the scalar, serial, obviously-correct implementation of every op; the test oracle.
#include <algorithm>
#include <vector>

#include "backend/backend.h"
#include "backend/kv_write.h"
#include "backend/matmul.h"
#include "backend/ops_scalar.h"

namespace frugal {

namespace {

class RefBackend final : public Backend {
 public:
  const char* name() const override { return "ref"; }

  void matmul(const WeightView& w, const float* x, int64_t T, float* y) override { matmul_ref(w, x, T, y); }

  void get_rows(const WeightView& w, const int32_t* ids, int64_t T, float* out) override {
    frugal::get_rows(w, ids, T, out);
  }

  void rms_norm(const float* x, const float* w, int64_t T, int64_t D, float eps, float* y) override {
    for (int64_t t = 0; t < T; ++t) ops::rms_norm_row(x + t * D, w, D, eps, y + t * D);
  }

  void rope(float* x, int64_t row_stride, const int32_t* pos, int64_t T, int64_t H, int64_t Dh,
            const RopeParams& p) override {
    std::vector<float> cs((size_t)p.n_dims);
    for (int64_t t = 0; t < T; ++t) {
      ops::rope_cache(pos[t], p, cs.data());
      for (int64_t h = 0; h < H; ++h) ops::rope_head(x + t * row_stride + h * Dh, cs.data(), p);
    }
  }

  void rope_kv_write(const float* k, int64_t k_stride, const float* v, int64_t v_stride, const int32_t* pos,
                     const int32_t* rows, int64_t T, int64_t rope_col, int64_t H, int64_t Dh, const RopeParams& p,
                     const KvWriteTarget& dst) override {
    std::vector<float> tmp((size_t)dst.k_width);
    ops::rope_kv_write_rows(k, k_stride, v, v_stride, pos, rows, 0, T, rope_col, H, Dh, p, dst, tmp.data());
  }

  void attention(const float* q, int64_t q_stride, const int32_t* pos, int64_t T, const KvView& kv,
                 const AttentionShape& s, float* out) override {
    std::vector<float> scratch((size_t)std::max<int64_t>(kv.n_kv, 1));
    const int64_t group = s.H / s.Hkv;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t n_visible = std::min<int64_t>(pos[t] + 1, kv.n_kv);
      for (int64_t h = 0; h < s.H; ++h)
        ops::attention_head(q + t * q_stride + h * s.Dh_k, kv, h / group, n_visible, s, scratch.data(),
                            out + (t * s.H + h) * s.Dh_v);
    }
  }

  void silu_mul(float* g, const float* u, int64_t n) override { ops::silu_mul(g, u, n); }

  void add(float* x, const float* y, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
  }

  void add_bias(float* x, const float* b, int64_t T, int64_t n) override {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < n; ++i) x[t * n + i] += b[i];
  }
};

}  // namespace

std::unique_ptr<Backend> make_ref_backend() { return std::make_unique<RefBackend>(); }

}  // namespace frugal
