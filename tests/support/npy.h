// Minimal reader for NumPy .npy v1.0 float32 C-order arrays (test oracle files).
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace frugal::testing {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// Returns false (with a message in *err) when the file is missing or not a '<f4' C-order .npy.
inline bool read_npy_f32(const std::string& path, NpyArray* out, std::string* err) {
  std::ifstream f(path, std::ios::binary);
  if (!f) { *err = path + ": cannot open"; return false; }
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (all.size() < 10 || all.compare(0, 6, "\x93NUMPY") != 0) { *err = path + ": not an .npy file"; return false; }
  const size_t hlen = (uint8_t)all[8] | ((size_t)(uint8_t)all[9] << 8);
  if (10 + hlen > all.size()) { *err = path + ": truncated header"; return false; }
  const std::string header = all.substr(10, hlen);
  if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos) {
    *err = path + ": expected '<f4' C order, header " + header;
    return false;
  }
  const size_t lp = header.find('('), rp = header.find(')');
  std::stringstream ss(header.substr(lp + 1, rp - lp - 1));
  std::string tok;
  out->shape.clear();
  int64_t n = 1;
  while (std::getline(ss, tok, ',')) {
    if (tok.find_first_not_of(" ") == std::string::npos) continue;
    out->shape.push_back(std::stoll(tok));
    n *= out->shape.back();
  }
  if (all.size() < 10 + hlen + (size_t)n * 4) { *err = path + ": truncated data"; return false; }
  out->data.resize((size_t)n);
  std::memcpy(out->data.data(), all.data() + 10 + hlen, (size_t)n * 4);
  return true;
}

}  // namespace frugal::testing
