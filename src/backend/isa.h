// Runtime ISA selection: one binary runs on any x86-64 CPU and uses the best vector unit it has.
#pragma once

namespace frugal {

enum class Isa {
  kScalar = 0,  // portable C++, the reference
  kAvx2 = 1,    // AVX2 + FMA + F16C
  kAvx512 = 2,  // AVX-512 F/BW/VL/DQ + VNNI (+ BF16 when present)
};

const char* isa_name(Isa isa);
// Best ISA this CPU supports (CPUID + XGETBV: the OS must save the wider registers).
Isa detect_isa();
// True if this CPU can run code built for `isa`.
bool isa_supported(Isa isa);
// CPU feature summary for logs and benchmark reports, e.g. "AVX2 FMA F16C AVX512F ... AVX512_BF16".
const char* cpu_features_string();
bool cpu_has_avx512_bf16();

}  // namespace frugal
