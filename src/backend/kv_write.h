// Row kernels of Backend::rope_kv_write (shared by RefBackend, CpuBackend and the default), built from the
// scalar rope of ops_scalar.h and the reference conversions, so every backend writes identical bytes.
#pragma once

#include <cstdint>

#include "backend/backend.h"

namespace frugal::ops {

// dst[0, n) = src converted to `type` (F32 copy, F16 round-to-nearest-even, Q8_0 qref::from_float_q8_0).
void kv_store_row(const float* src, int64_t n, DType type, uint8_t* dst);

// rope_kv_write for tokens [t0, t1); `tmp` holds dst.k_width floats.
void rope_kv_write_rows(const float* k, int64_t k_stride, const float* v, int64_t v_stride, const int32_t* pos,
                        const int32_t* rows, int64_t t0, int64_t t1, int64_t rope_col, int64_t H, int64_t Dh,
                        const RopeParams& p, const KvWriteTarget& dst, float* tmp);

}  // namespace frugal::ops
