#include "npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace frugal::cli {

std::string npy_header_f32(const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) dict += ",";
    if (i + 1 < shape.size()) dict += " ";
  }
  dict += "), }";
  // 6 magic + 2 version + 2 length bytes precede the dict; the dict ends with '\n'.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string h = "\x93NUMPY";
  h += '\x01';
  h += '\x00';
  h += (char)(dict.size() & 0xff);
  h += (char)(dict.size() >> 8);
  return h + dict;
}

Status write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  size_t n = 1;
  for (int64_t d : shape) n *= (size_t)d;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return io_error(path + ": cannot create file: " + std::strerror(errno));
  const std::string h = npy_header_f32(shape);
  // The values are little-endian floats in memory on every platform frugal runs on (x86-64).
  bool ok = std::fwrite(h.data(), 1, h.size(), f) == h.size() && std::fwrite(data, sizeof(float), n, f) == n;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return io_error(path + ": write failed");
  return Status::Ok();
}

}  // namespace frugal::cli
