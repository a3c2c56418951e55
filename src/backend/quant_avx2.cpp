#include "backend/quant_isa.h"

namespace frugal {

void quant_fill_avx2(QuantTraits* row) { (void)row; }

}  // namespace frugal
