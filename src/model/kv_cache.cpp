#include "model/kv_cache.h"

#include <cstring>

#include "base/check.h"
#include "backend/quant_ref.h"
#include "base/half.h"
#include "model/config.h"

namespace frugal {

// Bytes of a row of `width` values.
static size_t row_bytes(int64_t width, DType type) {
  if (type == DType::Q8_0) return (size_t)(width / 32) * 34;
  return (size_t)width * (type == DType::F32 ? 4 : 2);
}

Status KvCache::supports(const ModelConfig& c, DType type) {
  if (type == DType::F32 || type == DType::F16) return Status::Ok();
  if (type != DType::Q8_0) return invalid_argument(std::string("KV cache type ") + dtype_name(type) + " is not supported (f32, f16, q8_0)");
  if (c.head_dim_k % 32 != 0 || c.head_dim_v % 32 != 0)
    return invalid_argument("a q8_0 KV cache needs head dimensions that are multiples of 32; this model has K " +
                            std::to_string(c.head_dim_k) + ", V " + std::to_string(c.head_dim_v) + " (use f16)");
  if (c.head_dim_v == 0 && c.mla.kv_lora_rank % 32 != 0)  // MLA latent: V = the first kv_lora_rank columns of K
    return invalid_argument("a q8_0 KV cache needs kv_lora_rank to be a multiple of 32; this model has " +
                            std::to_string(c.mla.kv_lora_rank) + " (use f16)");
  return Status::Ok();
}

size_t KvCache::bytes_per_token(const ModelConfig& c, DType type) {
  return (size_t)c.n_layer * (row_bytes(c.n_embd_k_gqa(), type) + row_bytes(c.n_embd_v_gqa(), type));
}

KvCache::KvCache(const ModelConfig& c, int64_t n_ctx, DType type)
    : n_layer_(c.n_layer), n_ctx_(n_ctx), k_width_(c.n_embd_k_gqa()), v_width_(c.n_embd_v_gqa()), type_(type) {
  FRUGAL_CHECK_MSG(supports(c, type).ok(), "unsupported KV cache type");
  FRUGAL_CHECK(n_ctx > 0);
  k_row_bytes_ = row_bytes(k_width_, type);
  v_row_bytes_ = row_bytes(v_width_, type);
  // Anonymous mappings: zero pages appear on first touch, so a large context costs nothing up front.
  StatusOr<HugeBuffer> k = HugeBuffer::allocate((size_t)n_layer_ * n_ctx_ * k_row_bytes_, "KV cache (K)");
  FRUGAL_CHECK_MSG(k.ok(), k.status().message().c_str());
  k_ = std::move(k).value();
  StatusOr<HugeBuffer> v = HugeBuffer::allocate((size_t)n_layer_ * n_ctx_ * v_row_bytes_, "KV cache (V)");
  FRUGAL_CHECK_MSG(v.ok(), v.status().message().c_str());
  v_ = std::move(v).value();
}

void KvCache::truncate(int64_t n) {
  FRUGAL_CHECK(n >= 0 && n <= n_past_);
  n_past_ = n;
}

void KvCache::set_n_past(int64_t n) {
  FRUGAL_CHECK(n >= 0 && n <= n_ctx_);
  n_past_ = n;
}

size_t KvCache::bytes_per_token() const { return (size_t)n_layer_ * (k_row_bytes_ + v_row_bytes_); }

static void store_row(uint8_t* dst, const float* src, int64_t n, DType type) {
  if (type == DType::Q8_0) {
    qref::from_float_q8_0(src, dst, n);  // the activation quantizer: round half to even, like every ISA path
  } else if (type == DType::F32) {
    std::memcpy(dst, src, (size_t)n * 4);
  } else {
    uint16_t* d = reinterpret_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_fp16(src[i]);
  }
}

void KvCache::store(int64_t layer, const int32_t* rows, int64_t T, const float* k, int64_t k_stride, const float* v,
                    int64_t v_stride) {
  FRUGAL_CHECK(layer >= 0 && layer < n_layer_);
  uint8_t* kl = k_.data() + (size_t)layer * n_ctx_ * k_row_bytes_;
  uint8_t* vl = v_.data() + (size_t)layer * n_ctx_ * v_row_bytes_;
  for (int64_t t = 0; t < T; ++t) {
    FRUGAL_CHECK(rows[t] >= 0 && rows[t] < n_ctx_);
    store_row(kl + (size_t)rows[t] * k_row_bytes_, k + t * k_stride, k_width_, type_);
    if (v_width_ > 0) store_row(vl + (size_t)rows[t] * v_row_bytes_, v + t * v_stride, v_width_, type_);
  }
}

KvWriteTarget KvCache::write_target(int64_t layer) {
  FRUGAL_CHECK(layer >= 0 && layer < n_layer_);
  KvWriteTarget t;
  t.type = type_;
  t.k = k_.data() + (size_t)layer * n_ctx_ * k_row_bytes_;
  t.v = v_width_ > 0 ? v_.data() + (size_t)layer * n_ctx_ * v_row_bytes_ : nullptr;
  t.k_row_bytes = k_row_bytes_;
  t.v_row_bytes = v_row_bytes_;
  t.k_width = k_width_;
  t.v_width = v_width_;
  t.n_rows = n_ctx_;
  return t;
}

KvView KvCache::view(int64_t layer, int64_t n_kv, const int32_t* block_table, int block_shift) const {
  FRUGAL_CHECK(layer >= 0 && layer < n_layer_ && n_kv >= 0 && (block_table || n_kv <= n_ctx_));
  KvView kv;
  kv.type = type_;
  kv.k = k_.data() + (size_t)layer * n_ctx_ * k_row_bytes_;
  kv.v = v_.data() + (size_t)layer * n_ctx_ * v_row_bytes_;
  kv.k_row_bytes = k_row_bytes_;
  kv.v_row_bytes = v_row_bytes_;
  if (v_width_ == 0) {  // MLA latent mode: V is the first columns of K
    kv.v = kv.k;
    kv.v_row_bytes = k_row_bytes_;
  }
  kv.n_kv = n_kv;
  kv.block_table = block_table;
  kv.block_shift = block_shift;
  return kv;
}

}  // namespace frugal
