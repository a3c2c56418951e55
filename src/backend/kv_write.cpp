#include "backend/kv_write.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/ops_scalar.h"
#include "backend/quant_ref.h"
#include "base/check.h"
#include "base/half.h"

namespace frugal {

namespace ops {

void kv_store_row(const float* src, int64_t n, DType type, uint8_t* dst) {
  if (type == DType::Q8_0) {
    qref::from_float_q8_0(src, dst, n);
  } else if (type == DType::F32) {
    std::memcpy(dst, src, (size_t)n * sizeof(float));
  } else {
    FRUGAL_CHECK(type == DType::F16);
    uint16_t* d = reinterpret_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_fp16(src[i]);
  }
}

void rope_kv_write_rows(const float* k, int64_t k_stride, const float* v, int64_t v_stride, const int32_t* pos,
                        const int32_t* rows, int64_t t0, int64_t t1, int64_t rope_col, int64_t H, int64_t Dh,
                        const RopeParams& p, const KvWriteTarget& dst, float* tmp) {
  FRUGAL_CHECK(rope_col + H * Dh <= dst.k_width);
  std::vector<float> cs((size_t)p.n_dims);
  for (int64_t t = t0; t < t1; ++t) {
    FRUGAL_CHECK(rows[t] >= 0 && rows[t] < dst.n_rows);
    std::copy(k + t * k_stride, k + t * k_stride + dst.k_width, tmp);
    rope_cache(pos[t], p, cs.data());
    for (int64_t h = 0; h < H; ++h) rope_head(tmp + rope_col + h * Dh, cs.data(), p);
    kv_store_row(tmp, dst.k_width, dst.type, dst.k + (size_t)rows[t] * dst.k_row_bytes);
    if (dst.v) kv_store_row(v + t * v_stride, dst.v_width, dst.type, dst.v + (size_t)rows[t] * dst.v_row_bytes);
  }
}

}  // namespace ops

void Backend::rope_kv_write(const float* k, int64_t k_stride, const float* v, int64_t v_stride, const int32_t* pos,
                            const int32_t* rows, int64_t T, int64_t rope_col, int64_t H, int64_t Dh,
                            const RopeParams& p, const KvWriteTarget& dst) {
  std::vector<float> tmp((size_t)(T * dst.k_width));
  for (int64_t t = 0; t < T; ++t) std::copy(k + t * k_stride, k + t * k_stride + dst.k_width, tmp.data() + t * dst.k_width);
  rope(tmp.data() + rope_col, dst.k_width, pos, T, H, Dh, p);
  for (int64_t t = 0; t < T; ++t) {
    FRUGAL_CHECK(rows[t] >= 0 && rows[t] < dst.n_rows);
    ops::kv_store_row(tmp.data() + t * dst.k_width, dst.k_width, dst.type, dst.k + (size_t)rows[t] * dst.k_row_bytes);
    if (dst.v) ops::kv_store_row(v + t * v_stride, dst.v_width, dst.type, dst.v + (size_t)rows[t] * dst.v_row_bytes);
  }
}

}  // namespace frugal
