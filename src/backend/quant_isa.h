// Per-ISA overrides of the quant traits table (internal to backend/). Each function sets the entries
// of `row` it implements for `row->type` and leaves the others untouched (they stay scalar).
// Only called after isa_supported() said the CPU can run that code.
#pragma once

#include "backend/quant.h"

namespace frugal {

void quant_fill_avx2(QuantTraits* row);
void quant_fill_avx512(QuantTraits* row);

}  // namespace frugal
