#include "backend/quant_isa.h"

namespace frugal {

void quant_fill_avx512(QuantTraits* row) { (void)row; }

}  // namespace frugal
