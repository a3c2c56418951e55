// libFuzzer target for the GGUF reader (and, on inputs that parse, a writer -> reader round trip).
//
// Every accessor the rest of frugal relies on after a successful open is exercised: each KV value,
// each array element, the first and last byte of each tensor's data. ASan reports any out-of-bounds
// read; a round trip that fails to reparse or changes the structure aborts.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"

namespace {

volatile uint64_t g_sink;

void touch_value(const frugal::GgufValue& v) {
  uint64_t acc = (uint64_t)v.i ^ v.u ^ (uint64_t)v.b;
  for (char c : v.str) acc += (uint8_t)c;
  if (v.type == frugal::GgufType::ARRAY) {
    if (v.elem_type == frugal::GgufType::STRING) {
      for (std::string_view s : v.strings)
        if (!s.empty()) acc += (uint8_t)s.front() + (uint8_t)s.back();
    } else {
      for (uint64_t k = 0; k < v.count; ++k) {
        acc += (uint64_t)v.array_int(k);
        const double f = v.array_float(k);
        uint64_t bits;
        std::memcpy(&bits, &f, 8);
        acc ^= bits;
      }
    }
  }
  g_sink = g_sink + acc;
}

void touch_getters(const frugal::GgufFile& f, const std::string& key) {
  // Each getter either succeeds or returns an error; none may crash.
  g_sink = g_sink + f.get_int(key, 0).ok() + f.get_float(key, 0).ok() + f.get_bool(key, false).ok() +
           f.get_string(key, "").ok() + f.get_string_array(key).ok() + f.get_int_array(key).ok() +
           f.get_float_array(key).ok();
}

void round_trip(const frugal::GgufFile& f) {
  if (f.alignment() > 4096) return;  // padding would dominate the fuzzer's memory budget
  frugal::GgufWriter w;
  w.copy_kvs(f, "");
  for (const frugal::GgufTensorInfo& t : f.tensors()) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    w.add_tensor(t.name, t.type, ne, std::vector<uint8_t>(t.data, t.data + t.nbytes));
  }
  const std::vector<uint8_t> bytes = w.to_bytes();
  auto g = frugal::GgufFile::from_memory(bytes.data(), bytes.size(), "roundtrip.gguf");
  if (!g.ok()) {
    std::fprintf(stderr, "round trip failed to reparse: %s\n", g.status().message().c_str());
    std::abort();
  }
  const frugal::GgufFile& h = **g;
  if (h.kvs().size() != f.kvs().size() || h.tensors().size() != f.tensors().size()) std::abort();
  for (size_t k = 0; k < f.kvs().size(); ++k) {
    const frugal::GgufValue& a = f.kvs()[k].value;
    const frugal::GgufValue& b = h.kvs()[k].value;
    if (h.kvs()[k].key != f.kvs()[k].key || a.type != b.type || a.count != b.count || a.str != b.str ||
        a.u != b.u || a.b != b.b || a.strings != b.strings)
      std::abort();
    if (a.type != frugal::GgufType::ARRAY || a.elem_type == frugal::GgufType::STRING) continue;
    for (uint64_t e = 0; e < a.count; ++e)
      if (a.array_int(e) != b.array_int(e)) std::abort();
  }
  for (size_t k = 0; k < f.tensors().size(); ++k) {
    const frugal::GgufTensorInfo& a = f.tensors()[k];
    const frugal::GgufTensorInfo& b = h.tensors()[k];
    if (a.name != b.name || a.type != b.type || a.nbytes != b.nbytes || std::memcmp(a.data, b.data, a.nbytes) != 0)
      std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = frugal::GgufFile::from_memory(data, size, "fuzz.gguf");
  if (!r.ok()) {
    if (r.status().message().rfind("fuzz.gguf: ", 0) != 0) std::abort();  // every error names the file
    return 0;
  }
  const frugal::GgufFile& f = **r;
  for (const frugal::GgufKV& kv : f.kvs()) {
    touch_value(kv.value);
    touch_getters(f, kv.key);
  }
  for (const frugal::GgufTensorInfo& t : f.tensors()) {
    g_sink = g_sink + t.data[0] + t.data[t.nbytes - 1] + (uint64_t)t.n_elements() + t.row_bytes();
    if (f.tensor(t.name) == nullptr) std::abort();
    (void)t.shape_string();
  }
  round_trip(f);
  return 0;
}
