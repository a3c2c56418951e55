// AVX2/F16C twin of ops::attention_head (backend/ops_scalar.h): same semantics, 8-wide dot products
// and V accumulation, F16 keys/values converted with F16C. Call only when isa_supported(Isa::kAvx2).
#pragma once

#include <cstdint>

#include "backend/backend.h"

namespace frugal::ops {

void attention_head_avx2(const float* q, const KvView& kv, int64_t g, int64_t n_visible, const AttentionShape& s,
                         float* scratch, float* out);

}  // namespace frugal::ops
