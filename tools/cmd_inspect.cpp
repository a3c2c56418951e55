// frugal inspect: what a GGUF file holds (header, metadata, tensors, per-type summary), without loading
// a model. Tensors of a type frugal cannot compute with are flagged.
#include <cstdio>
#include <map>
#include <memory>

#include "cli_common.h"
#include "tensor/sparse_nm.h"

namespace frugal::cli {

namespace {

constexpr size_t kArrayItems = 8;     // array items shown before "..."
constexpr size_t kStringChars = 80;   // string bytes shown before "..."

std::string scalar_string(const GgufValue& v) {
  char buf[64];
  switch (v.type) {
    case GgufType::FLOAT32:
    case GgufType::FLOAT64: std::snprintf(buf, sizeof(buf), "%g", v.f); return buf;
    case GgufType::BOOL: return v.b ? "true" : "false";
    case GgufType::STRING: return escape_text(v.str, /*quotes=*/true, kStringChars);
    case GgufType::UINT64: return std::to_string(v.u);
    default: return std::to_string(v.i);
  }
}

std::string value_string(const GgufValue& v) {
  if (v.type != GgufType::ARRAY) return scalar_string(v);
  std::string out = "[";
  const size_t shown = (size_t)std::min<uint64_t>(v.count, kArrayItems);
  for (size_t k = 0; k < shown; ++k) {
    if (k) out += ", ";
    if (v.elem_type == GgufType::STRING) {
      out += escape_text(v.strings[k], /*quotes=*/true, 32);
    } else if (v.elem_type == GgufType::FLOAT32 || v.elem_type == GgufType::FLOAT64) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%g", v.array_float(k));
      out += buf;
    } else {
      out += std::to_string(v.array_int(k));
    }
  }
  if (v.count > shown) out += ", ... (" + std::to_string(v.count) + " items)";
  return out + "]";
}

std::string type_string(const GgufValue& v) {
  if (v.type != GgufType::ARRAY) return gguf_type_name(v.type);
  return std::string(gguf_type_name(v.elem_type)) + "[" + std::to_string(v.count) + "]";
}

struct TypeSummary {
  int tensors = 0;
  uint64_t elements = 0;
  uint64_t bytes = 0;
};

void print_tensors(const GgufFile& f) {
  std::printf("\ntensors (%zu):\n", f.tensors().size());
  std::printf("  %5s  %-40s %-8s %-24s %12s\n", "#", "name", "type", "shape", "bytes");
  int i = 0;
  for (const GgufTensorInfo& t : f.tensors()) {
    const bool ok = dtype_info(t.type).implemented;
    std::printf("  %5d  %-40s %-8s %-24s %12llu%s\n", i++, t.name.c_str(), dtype_name(t.type),
                t.shape_string().c_str(), (unsigned long long)t.nbytes, ok ? "" : "  !! type not supported by frugal");
  }
}

void print_summary(const GgufFile& f) {
  std::map<DType, TypeSummary> by_type;
  std::vector<std::string> unsupported_tensors;
  for (const GgufTensorInfo& t : f.tensors()) {
    TypeSummary& s = by_type[t.type];
    s.tensors++;
    s.elements += (uint64_t)t.n_elements();
    s.bytes += t.nbytes;
    if (!dtype_info(t.type).implemented) unsupported_tensors.push_back(t.name);
  }
  const uint64_t params = tensor_elements(f);
  const uint64_t bytes = tensor_bytes(f);
  std::printf("\nsummary:\n");
  std::printf("  parameters:      %llu (%s)\n", (unsigned long long)params, format_count(params).c_str());
  std::printf("  tensor bytes:    %llu (%s)\n", (unsigned long long)bytes, format_bytes(bytes).c_str());
  std::printf("  bits per weight: %.3f\n", params ? 8.0 * (double)bytes / (double)params : 0.0);
  std::printf("  file type:       %s\n", file_type_name(f).c_str());
  std::printf("\n  %-8s %8s %14s %14s %8s\n", "type", "tensors", "parameters", "bytes", "bpw");
  for (const auto& [type, s] : by_type) {
    std::printf("  %-8s %8d %14llu %14llu %8.3f%s\n", dtype_name(type), s.tensors, (unsigned long long)s.elements,
                (unsigned long long)s.bytes, s.elements ? 8.0 * (double)s.bytes / (double)s.elements : 0.0,
                dtype_info(type).implemented ? "" : "  !! not supported by frugal");
    if (const SparseTypeInfo* sp = sparse_type_info(type))
      std::printf("  %-8s %d:%d sparse over %s (frugal-only type; llama.cpp will not load this file; use frugal "
                  "prune --dense-out for a dense copy)\n", "", sp->n, sp->m, dtype_name(sp->base));
  }
  if (unsupported_tensors.empty()) {
    std::printf("\n  every tensor type is supported by frugal\n");
  } else {
    std::printf("\n  !! %zu tensor(s) of a type frugal cannot compute with (first: %s)\n", unsupported_tensors.size(),
                unsupported_tensors[0].c_str());
  }
}

Status inspect(const std::string& path) {
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> f, GgufFile::open(path));
  std::printf("file: %s (%zu bytes)\n", path.c_str(), f->file_size());
  std::printf("GGUF version %u, alignment %llu, data offset %llu, %zu tensors, %zu metadata keys\n", f->version(),
              (unsigned long long)f->alignment(), (unsigned long long)f->data_offset(), f->tensors().size(),
              f->kvs().size());
  std::printf("\nmetadata (%zu):\n", f->kvs().size());
  for (const GgufKV& kv : f->kvs()) {
    std::printf("  %-44s %-14s %s\n", kv.key.c_str(), type_string(kv.value).c_str(), value_string(kv.value).c_str());
  }
  print_tensors(*f);
  print_summary(*f);
  return Status::Ok();
}

}  // namespace

Command add_inspect_command(CLI::App& root) {
  auto path = std::make_shared<std::string>();
  CLI::App* app = root.add_subcommand("inspect", "Show a GGUF file's header, metadata, tensors and size summary");
  app->add_option("model", *path, "GGUF file")->required();
  return Command{app, [path] { return inspect(*path); }};
}

}  // namespace frugal::cli
