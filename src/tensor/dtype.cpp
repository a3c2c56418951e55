#include "tensor/dtype.h"

#include <cctype>

#include "base/check.h"

namespace frugal {

namespace {

constexpr DTypeInfo kTypes[] = {
    {DType::F32, "F32", 1, 4, true},
    {DType::F16, "F16", 1, 2, true},
    {DType::Q4_0, "Q4_0", 32, 18, true},
    {DType::Q4_1, "Q4_1", 32, 20, true},
    {DType::Q5_0, "Q5_0", 32, 22, true},
    {DType::Q5_1, "Q5_1", 32, 24, true},
    {DType::Q8_0, "Q8_0", 32, 34, true},
    {DType::Q8_1, "Q8_1", 32, 36, true},
    {DType::Q2_K, "Q2_K", 256, 84, false},
    {DType::Q3_K, "Q3_K", 256, 110, false},
    {DType::Q4_K, "Q4_K", 256, 144, true},
    {DType::Q5_K, "Q5_K", 256, 176, true},
    {DType::Q6_K, "Q6_K", 256, 210, true},
    {DType::Q8_K, "Q8_K", 256, 292, true},
    {DType::IQ2_XXS, "IQ2_XXS", 256, 66, false},
    {DType::IQ2_XS, "IQ2_XS", 256, 74, false},
    {DType::IQ3_XXS, "IQ3_XXS", 256, 98, false},
    {DType::IQ1_S, "IQ1_S", 256, 50, false},
    {DType::IQ4_NL, "IQ4_NL", 32, 18, true},
    {DType::IQ3_S, "IQ3_S", 256, 110, false},
    {DType::IQ2_S, "IQ2_S", 256, 82, false},
    {DType::IQ4_XS, "IQ4_XS", 256, 136, false},
    {DType::I8, "I8", 1, 1, false},
    {DType::I16, "I16", 1, 2, false},
    {DType::I32, "I32", 1, 4, false},
    {DType::I64, "I64", 1, 8, false},
    {DType::F64, "F64", 1, 8, false},
    {DType::IQ1_M, "IQ1_M", 256, 56, false},
    {DType::BF16, "BF16", 1, 2, true},
    {DType::TQ1_0, "TQ1_0", 256, 54, false},
    {DType::TQ2_0, "TQ2_0", 256, 66, false},
    {DType::MXFP4, "MXFP4", 32, 17, false},
    {DType::Q8_0_S1_4, "Q8_0_S1_4", 32, 12, true},  // 1:4 sparse over Q8_0
    {DType::Q8_0_S2_4, "Q8_0_S2_4", 32, 21, true},  // 2:4 sparse over Q8_0
    {DType::Q8_0_S1_8, "Q8_0_S1_8", 32, 10, true},  // 1:8 sparse over Q8_0
    {DType::Q8_0_S2_8, "Q8_0_S2_8", 32, 14, true},  // 2:8 sparse over Q8_0
    {DType::Q8_0_S4_8, "Q8_0_S4_8", 32, 22, true},  // 4:8 sparse over Q8_0
    {DType::Q8_0_S4_16, "Q8_0_S4_16", 32, 14, true},  // 4:16 sparse over Q8_0
    {DType::Q8_0_S8_16, "Q8_0_S8_16", 32, 22, true},  // 8:16 sparse over Q8_0
    {DType::Q4_0_S1_4, "Q4_0_S1_4", 32, 8, true},  // 1:4 sparse over Q4_0
    {DType::Q4_0_S2_4, "Q4_0_S2_4", 32, 13, true},  // 2:4 sparse over Q4_0
    {DType::Q4_0_S1_8, "Q4_0_S1_8", 32, 8, true},  // 1:8 sparse over Q4_0
    {DType::Q4_0_S2_8, "Q4_0_S2_8", 32, 10, true},  // 2:8 sparse over Q4_0
    {DType::Q4_0_S4_8, "Q4_0_S4_8", 32, 14, true},  // 4:8 sparse over Q4_0
    {DType::Q4_0_S4_16, "Q4_0_S4_16", 32, 10, true},  // 4:16 sparse over Q4_0
    {DType::Q4_0_S8_16, "Q4_0_S8_16", 32, 14, true},  // 8:16 sparse over Q4_0
    {DType::F16_S1_4, "F16_S1_4", 32, 18, true},  // 1:4 sparse over F16
    {DType::F16_S2_4, "F16_S2_4", 32, 35, true},  // 2:4 sparse over F16
    {DType::F16_S1_8, "F16_S1_8", 32, 12, true},  // 1:8 sparse over F16
    {DType::F16_S2_8, "F16_S2_8", 32, 20, true},  // 2:8 sparse over F16
    {DType::F16_S4_8, "F16_S4_8", 32, 36, true},  // 4:8 sparse over F16
    {DType::F16_S4_16, "F16_S4_16", 32, 20, true},  // 4:16 sparse over F16
    {DType::F16_S8_16, "F16_S8_16", 32, 36, true},  // 8:16 sparse over F16
};

}  // namespace

const DTypeInfo* dtype_info(uint32_t id) {
  for (const DTypeInfo& i : kTypes)
    if ((uint32_t)i.type == id) return &i;
  return nullptr;
}

const DTypeInfo& dtype_info(DType t) {
  const DTypeInfo* i = dtype_info((uint32_t)t);
  FRUGAL_CHECK(i != nullptr);
  return *i;
}

bool dtype_from_name(const std::string& name, DType* out) {
  std::string up;
  for (char c : name) up += (char)std::toupper((unsigned char)c);
  for (const DTypeInfo& i : kTypes) {
    if (up == i.name) {
      *out = i.type;
      return true;
    }
  }
  return false;
}

}  // namespace frugal
