// Minimal NumPy .npy writer: format version 1.0, dtype '<f4', C order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace frugal::cli {

// The complete header (magic, version, length, dict padded with spaces and '\n' to a multiple of 64).
std::string npy_header_f32(const std::vector<int64_t>& shape);
// Writes data (product(shape) floats) to path. Errors name the path.
Status write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data);

}  // namespace frugal::cli
