// Backend: the complete, closed list of ops that model code may call. Execution is eager; shapes are
// row-major, outermost first (T tokens in the step, D n_embd, H heads, Hkv kv heads, Dh head dim).
//
// Two implementations: RefBackend (backend/ref: scalar, obviously correct, the test oracle) and
// CpuBackend (backend/cpu: SIMD picked at run time, multithreaded over the engine's ThreadPool).
// Results of one token never depend on the other tokens in the batch (fixed reduction order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "backend/isa.h"
#include "tensor/dtype.h"

namespace frugal {

class ThreadPool;

// A 2-D weight as stored in the file: N rows of K elements in `type`.
struct WeightView {
  DType type = DType::F32;
  int64_t K = 0;  // row length (ggml ne[0])
  int64_t N = 0;  // rows (ggml ne[1])
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
  const uint8_t* row(int64_t r) const { return data + (size_t)r * row_bytes; }
};

enum class RopeMode { kNorm = 0, kNeox = 2 };

struct RopeParams {
  RopeMode mode = RopeMode::kNorm;
  int n_dims = 0;            // rotated dims (<= head dim); the rest are copied
  float freq_base = 10000.f;
  float freq_scale = 1.f;    // 1/linear factor
  float ext_factor = 0.f;    // YaRN mix (0 = off)
  float attn_factor = 1.f;
  float beta_fast = 32.f;
  float beta_slow = 1.f;
  int n_ctx_orig = 0;
  const float* freq_factors = nullptr;  // optional [n_dims/2] divisors (rope_freqs.weight)
};

// Keys/values of one sequence for one layer: rows of Hkv*Dh values in `type` (F32, F16, or Q8_0 with
// head dims that are multiples of 32 so every head starts a block). Position r of
// the sequence is storage row row(r): r itself when block_table is null (one contiguous sequence), else
// row block_table[r >> block_shift] * block_size + (r & (block_size - 1)) (the paged cache; block_size is
// a power of two). Only positions [0, n_kv) are valid.
//
//   block_shift 2 (4 slots), table [7, 2]:  pos 0..3 -> rows 28..31, pos 4..7 -> rows 8..11
struct KvView {
  DType type = DType::F32;
  const void* k = nullptr;
  const void* v = nullptr;
  size_t k_row_bytes = 0;
  size_t v_row_bytes = 0;
  int64_t n_kv = 0;
  const int32_t* block_table = nullptr;
  int block_shift = 0;

  int64_t row(int64_t r) const {
    if (!block_table) return r;
    return ((int64_t)block_table[r >> block_shift] << block_shift) | (r & ((int64_t{1} << block_shift) - 1));
  }
  const uint8_t* k_row(int64_t r) const { return static_cast<const uint8_t*>(k) + (size_t)row(r) * k_row_bytes; }
  const uint8_t* v_row(int64_t r) const { return static_cast<const uint8_t*>(v) + (size_t)row(r) * v_row_bytes; }
};

// Writable K/V storage rows of one layer, the destination of Backend::rope_kv_write: n_rows rows of
// k_width (v_width) values in `type` (F32, F16, or Q8_0 with widths that are multiples of 32), k_row_bytes
// (v_row_bytes) apart. v is null when there is no V storage (MLA latent cache).
struct KvWriteTarget {
  DType type = DType::F32;
  uint8_t* k = nullptr;
  uint8_t* v = nullptr;
  size_t k_row_bytes = 0, v_row_bytes = 0;
  int64_t k_width = 0, v_width = 0;
  int64_t n_rows = 0;
};

struct AttentionShape {
  int64_t H = 0, Hkv = 0, Dh_k = 0, Dh_v = 0;
  float scale = 1.f;  // kq scale
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // y[T, N] = x[T, K] · W^T  (x f32; converted to W's vec_dot_type first).
  virtual void matmul(const WeightView& w, const float* x, int64_t T, float* y) = 0;
  // Several independent matmuls in one call: jobs[i].y[T_i, N_i] = jobs[i].x[T_i, K_i] · W_i^T, each
  // bit-identical to what matmul() gives for it alone. The default loops over matmul(); backends override
  // it to spread all the jobs' weight rows over their threads in one go (the selected experts of a MoE
  // layer, MLA's per-head projections). No y may alias any x.
  struct MatmulJob {
    WeightView w;
    const float* x = nullptr;
    int64_t T = 0;
    float* y = nullptr;
  };
  virtual void matmul_multi(const MatmulJob* jobs, int64_t n) {
    for (int64_t i = 0; i < n; ++i) matmul(jobs[i].w, jobs[i].x, jobs[i].T, jobs[i].y);
  }
  // Tells the backend that the caller multiplies W with the T rows of x [T, w.K] in a form that is not
  // one matmul with W (absorbed MLA uses attn_kv_b's rows per head on attention outputs; llama.cpp and the
  // textbook form multiply the whole of it with x = the normalized KV latent). Computes nothing; backends
  // that collect activation statistics (ObservingBackend) record x for W, every other backend ignores it.
  virtual void note_input(const WeightView& w, const float* x, int64_t T) {}
  // out[T, K] = W rows ids[t], dequantized.
  virtual void get_rows(const WeightView& w, const int32_t* ids, int64_t T, float* out) = 0;
  // y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w   (w may be null: no scale). x and y may alias.
  virtual void rms_norm(const float* x, const float* w, int64_t T, int64_t D, float eps, float* y) = 0;
  // In place on x[T, H, Dh] (row stride `row_stride` floats between tokens), position pos[t].
  virtual void rope(float* x, int64_t row_stride, const int32_t* pos, int64_t T, int64_t H, int64_t Dh,
                    const RopeParams& p) = 0;
  // Fused rope + KV write. For every token t: row t of k (dst.k_width values, stride k_stride floats) with
  // the H heads of Dh values starting at column rope_col roped at position pos[t] (exactly as rope() does,
  // on a copy: k is not modified) is stored, converted to dst.type, as row rows[t] of dst.k; row t of v
  // (dst.v_width values, stride v_stride) as row rows[t] of dst.v when dst.v is set. Bit-identical to
  // rope() followed by the conversion (F16: round to nearest even; Q8_0: qref::from_float_q8_0). The
  // default does exactly that through rope() on a copy (backend/kv_write.cpp).
  virtual void rope_kv_write(const float* k, int64_t k_stride, const float* v, int64_t v_stride, const int32_t* pos,
                             const int32_t* rows, int64_t T, int64_t rope_col, int64_t H, int64_t Dh,
                             const RopeParams& p, const KvWriteTarget& dst);
  // out[T, H*Dh_v] = causal attention of q[T, H*Dh_k] (row stride q_stride) over kv rows [0, n_kv)
  // where query t sees keys with position <= pos[t].
  virtual void attention(const float* q, int64_t q_stride, const int32_t* pos, int64_t T, const KvView& kv,
                         const AttentionShape& s, float* out) = 0;
  // attention() for several sequences of one flattened batch at once: sequence i owns tokens
  // [seqs[i].t0, seqs[i].t0 + seqs[i].n) of q/pos/out and attends over seqs[i].kv. Each token's result
  // equals what attention() gives for its sequence alone. The default loops over attention(); backends
  // override it to spread all sequences' heads over their threads in one go (decode of many users).
  struct AttentionSeq {
    int64_t t0 = 0, n = 0;
    KvView kv;
  };
  virtual void attention_multi(const float* q, int64_t q_stride, const int32_t* pos, const AttentionSeq* seqs,
                               int64_t n_seqs, const AttentionShape& s, float* out) {
    const int64_t ow = s.H * s.Dh_v;
    for (int64_t i = 0; i < n_seqs; ++i)
      attention(q + seqs[i].t0 * q_stride, q_stride, pos + seqs[i].t0, seqs[i].n, seqs[i].kv, s, out + seqs[i].t0 * ow);
  }
  // g[i] = silu(g[i]) * u[i]
  virtual void silu_mul(float* g, const float* u, int64_t n) = 0;
  // x[i] += y[i]
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // x[t, i] += b[i]  (bias over T rows of n)
  virtual void add_bias(float* x, const float* b, int64_t T, int64_t n) = 0;
};

std::unique_ptr<Backend> make_ref_backend();
// Memory the CPU backend may spend on repacked copies of weights (batched decode and prefill kernels).
inline constexpr size_t kDefaultRepackLimit = size_t(8) << 30;
// CPU backend with `isa` kernels (detect_isa() for the best), using `pool` for threads (not owned).
// repack_limit: bytes of repacked weight copies it may keep (0: none; results are the same either way).
std::unique_ptr<Backend> make_cpu_backend(ThreadPool* pool, Isa isa, size_t repack_limit = kDefaultRepackLimit);

}  // namespace frugal
