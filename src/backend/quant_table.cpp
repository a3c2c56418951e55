// The quant traits table: one scalar row per implemented format (quant_ref*.cpp), overlaid per ISA
// with the SIMD entries that exist (quant_isa.h). Built once, on first use, thread-safely.
#include <array>
#include <vector>

#include "backend/quant.h"
#include "backend/quant_isa.h"
#include "backend/quant_ref.h"
#include "backend/sparse_quant.h"
#include "base/check.h"

namespace frugal {

namespace {

using namespace qref;

constexpr QuantTraits kScalarRows[] = {
    {DType::F32, DType::F32, to_float_f32, from_float_f32, vec_dot_f32, nullptr},
    {DType::F16, DType::F16, to_float_f16, from_float_f16, vec_dot_f16, nullptr},
    {DType::BF16, DType::BF16, to_float_bf16, from_float_bf16, vec_dot_bf16, nullptr},
    {DType::Q4_0, DType::Q8_0, to_float_q4_0, from_float_q4_0, vec_dot_q4_0_q8_0, nullptr},
    {DType::Q4_1, DType::Q8_1, to_float_q4_1, from_float_q4_1, vec_dot_q4_1_q8_1, nullptr},
    {DType::Q5_0, DType::Q8_0, to_float_q5_0, from_float_q5_0, vec_dot_q5_0_q8_0, nullptr},
    {DType::Q5_1, DType::Q8_1, to_float_q5_1, from_float_q5_1, vec_dot_q5_1_q8_1, nullptr},
    {DType::Q8_0, DType::Q8_0, to_float_q8_0, from_float_q8_0, vec_dot_q8_0_q8_0, nullptr},
    {DType::Q8_1, DType::Q8_1, to_float_q8_1, from_float_q8_1, nullptr, nullptr},
    {DType::Q4_K, DType::Q8_K, to_float_q4_K, from_float_q4_K, vec_dot_q4_K_q8_K, nullptr},
    {DType::Q5_K, DType::Q8_K, to_float_q5_K, from_float_q5_K, vec_dot_q5_K_q8_K, nullptr},
    {DType::Q6_K, DType::Q8_K, to_float_q6_K, from_float_q6_K, vec_dot_q6_K_q8_K, nullptr},
    {DType::Q8_K, DType::Q8_K, to_float_q8_K, from_float_q8_K, nullptr, nullptr},
    {DType::IQ4_NL, DType::Q8_0, to_float_iq4_nl, from_float_iq4_nl, vec_dot_iq4_nl_q8_0, nullptr},
};

constexpr int kNumIsa = 3;

struct Table {
  std::array<std::vector<QuantTraits>, kNumIsa> rows;
  Table() {
    for (int i = 0; i < kNumIsa; ++i) {
      const Isa isa = (Isa)i;
      if (!isa_supported(isa)) continue;
      for (const QuantTraits& base : kScalarRows) {
        QuantTraits row = base;
        if (isa == Isa::kAvx2) quant_fill_avx2(&row);
        if (isa == Isa::kAvx512) quant_fill_avx512(&row);
        rows[i].push_back(row);
      }
      for (const QuantTraits& row : sparse_quant_rows(isa, rows[i])) rows[i].push_back(row);  // N:M sparse types
    }
  }
};

}  // namespace

const QuantTraits* quant_traits(DType type, Isa isa) {
  FRUGAL_CHECK_MSG(isa_supported(isa), "quant_traits: this CPU cannot run the requested ISA");
  static const Table table;
  for (const QuantTraits& row : table.rows[(int)isa])
    if (row.type == type) return &row;
  return nullptr;
}

void quantize_row_weights(DType type, const float* src, void* dst, int64_t n) {
  if (type == DType::Q8_0) {
    qref::quantize_q8_0_weights(src, dst, n);
    return;
  }
  const QuantTraits* t = quant_traits(type, Isa::kScalar);
  FRUGAL_CHECK_MSG(t != nullptr && t->from_float != nullptr, "quantize_row_weights: type cannot be produced");
  t->from_float(src, dst, n);
}

}  // namespace frugal
