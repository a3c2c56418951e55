#include "compress/quantize.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <regex>

#include "backend/isa.h"
#include "backend/quant.h"
#include "base/thread_pool.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "model/quant_recipe.h"

namespace frugal {

namespace {

bool is_float_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

RecipeModel recipe_model(const GgufFile& f, const QuantizeOptions& opt) {
  RecipeModel m;
  const std::string arch = f.get_string("general.architecture", "").ok()
                               ? f.get_string("general.architecture", "").value() : "";
  auto nl = f.get_int(arch + ".block_count", 0);
  auto ne = f.get_int(arch + ".expert_count", 0);
  m.n_layer = nl.ok() ? (int)nl.value() : 0;
  m.n_expert = ne.ok() ? (int)ne.value() : 0;
  m.tied_embeddings = f.tensor("output.weight") == nullptr;
  m.has_imatrix = opt.imatrix != nullptr;
  m.leave_output = opt.leave_output;
  for (const GgufTensorInfo& t : f.tensors())
    if (recipe_is_attn_v(t.name)) ++m.n_attn_v;
  return m;
}

// Imatrix row for slice `s` of tensor t, or null when absent or of the wrong size.
const float* importance_for(const ImatrixEntry* e, const GgufTensorInfo& t, int64_t slice) {
  if (!e) return nullptr;
  return e->values.data() + slice * t.ne[0];
}

}  // namespace

StatusOr<QuantizeSummary> plan_quantization(const GgufFile& in, const QuantizeOptions& opt) {
  FRUGAL_ASSIGN_OR_RETURN(QuantRecipe recipe, parse_quant_recipe(opt.type));
  recipe.pure = opt.pure;
  std::vector<std::pair<std::regex, DType>> overrides;
  for (const auto& [pattern, tname] : opt.overrides) {
    DType t;
    if (!dtype_from_name(tname, &t) || !quant_traits(t, Isa::kScalar) ||
        (!is_float_type(t) && !quant_traits(t, Isa::kScalar)->from_float))
      return invalid_argument("--override '" + pattern + "=" + tname + "': unknown or unsupported type '" + tname + "'");
    try {
      overrides.emplace_back(std::regex(pattern), t);
    } catch (const std::regex_error& e) {
      return invalid_argument("--override '" + pattern + "': bad regular expression (" + e.what() + ")");
    }
  }
  const RecipeModel m = recipe_model(in, opt);
  QuantizeSummary s;
  bool warned_requant = false;
  for (const GgufTensorInfo& t : in.tensors()) {
    TensorPlan p;
    p.name = t.name;
    p.from = p.to = t.type;
    RecipeTensor rt{t.name, t.n_dims, t.ne[0], -1};
    if (recipe_is_attn_v(t.name)) {
      int i = 0;
      for (const GgufTensorInfo& u : in.tensors()) {
        if (&u == &t) break;
        if (recipe_is_attn_v(u.name)) ++i;
      }
      rt.i_attn_v = i;
    }
    if (recipe_converts(m, rt)) {
      p.to = recipe_tensor_type(recipe, m, rt);
      for (const auto& [re, ty] : overrides) {
        if (std::regex_search(t.name, re)) {
          p.to = recipe_fit_row(ty, t.ne[0]);
          break;
        }
      }
      p.converted = p.to != p.from;
      if (p.converted && !quant_traits(p.from, Isa::kScalar))
        return unsupported(in.path() + ": tensor '" + t.name + "' has type " + dtype_name(p.from) +
                           " that frugal cannot read");
      if (p.converted && !is_float_type(p.from) && !warned_requant) {
        s.warnings.push_back("input tensors are already quantized (e.g. '" + t.name + "' is " +
                             dtype_name(p.from) + "): dequantizing and re-quantizing adds their errors");
        warned_requant = true;
      }
    }
    if (p.converted && opt.imatrix && quantize_uses_importance(p.to)) {
      const ImatrixEntry* e = opt.imatrix->find(t.name);
      const int64_t want = t.ne[0] * t.ne[2] * t.ne[3];
      if (e && (int64_t)e->values.size() == want) p.uses_imatrix = true;
      else if (e) s.warnings.push_back("imatrix entry '" + t.name + "' has " + std::to_string(e->values.size()) +
                                       " values, expected " + std::to_string(want) + ": ignored");
      else s.warnings.push_back("no imatrix entry for '" + t.name + "'");
    }
    s.type_counts[dtype_name(p.to)]++;
    s.bytes_in += t.nbytes;
    s.bytes_out += dtype_row_bytes(p.to, t.ne[0]) * (uint64_t)t.n_rows();
    s.n_params += t.n_elements();
    s.tensors.push_back(std::move(p));
  }
  return s;
}

namespace {

// Converts rows of tensor t into dst (the whole output tensor), spreading rows over the pool.
void convert_tensor(const GgufTensorInfo& t, const TensorPlan& p, const Imatrix* imatrix, ThreadPool& pool,
                    uint8_t* dst) {
  const int64_t K = t.ne[0], rows = t.n_rows(), rows_per_slice = t.ne[1];
  const size_t in_rb = t.row_bytes(), out_rb = dtype_row_bytes(p.to, K);
  const QuantTraits* src = quant_traits(p.from, Isa::kScalar);
  const QuantTraits* dstt = quant_traits(p.to, Isa::kScalar);
  const ImatrixEntry* e = p.uses_imatrix ? imatrix->find(t.name) : nullptr;
  const int64_t chunk = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, K / 256));
  const int64_t n_chunks = (rows + chunk - 1) / chunk;
  std::vector<std::vector<float>> scratch((size_t)pool.n_threads(), std::vector<float>((size_t)K));
  pool.parallel_for(n_chunks, [&](int64_t c, int thread) {
    float* row = scratch[(size_t)thread].data();
    for (int64_t r = c * chunk; r < std::min(rows, (c + 1) * chunk); ++r) {
      src->to_float(t.data + (size_t)r * in_rb, row, K);
      uint8_t* out = dst + (size_t)r * out_rb;
      if (is_float_type(p.to)) dstt->from_float(row, out, K);
      else quantize_row_weights_imatrix(p.to, row, out, K, importance_for(e, t, r / rows_per_slice));
    }
  });
}

void print_progress(size_t i, size_t n, const GgufTensorInfo& t, const TensorPlan& p) {
  const int width = 24;
  const int filled = (int)((i + 1) * width / n);
  std::fprintf(stderr, "\r[%.*s%*s] %3zu/%zu %-36.36s %s -> %s%s", filled, "########################",
               width - filled, "", i + 1, n, t.name.c_str(), dtype_name(p.from), dtype_name(p.to),
               i + 1 == n ? "\n" : "   ");
  std::fflush(stderr);
}

}  // namespace

StatusOr<QuantizeSummary> quantize_model(const std::string& in_path, const std::string& out_path,
                                         const QuantizeOptions& opt) {
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> in, GgufFile::open(in_path));
  FRUGAL_ASSIGN_OR_RETURN(QuantizeSummary s, plan_quantization(*in, opt));
  FRUGAL_ASSIGN_OR_RETURN(QuantRecipe recipe, parse_quant_recipe(opt.type));
  GgufWriter w;
  w.copy_kvs(*in, "");
  // general.alignment (when the input sets it) is among the copied keys; otherwise both use the default 32.
  w.set_u32("general.file_type", recipe.file_type);
  if (!is_float_type(recipe.base)) w.set_u32("general.quantization_version", 2);
  ThreadPool pool(std::max(1, opt.threads));
  const size_t n = in->tensors().size();
  for (size_t i = 0; i < n; ++i) {
    const GgufTensorInfo& t = in->tensors()[i];
    const TensorPlan& p = s.tensors[i];
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    w.add_tensor_lazy(t.name, p.to, ne, [&, i](uint8_t* dst) {
      if (p.converted) convert_tensor(t, p, opt.imatrix, pool, dst);
      else std::memcpy(dst, t.data, t.nbytes);
      if (opt.progress) print_progress(i, n, t, p);
    });
  }
  FRUGAL_RETURN_IF_ERROR(w.write(out_path));
  return s;
}

std::string format_quantize_summary(const QuantizeSummary& s) {
  std::string out;
  char buf[256];
  for (const auto& [name, count] : s.type_counts) {
    std::snprintf(buf, sizeof buf, "  %-7s %5d tensors\n", name.c_str(), count);
    out += buf;
  }
  int with_imatrix = 0;
  for (const TensorPlan& p : s.tensors) with_imatrix += p.uses_imatrix;
  std::snprintf(buf, sizeof buf, "  size %.2f MiB -> %.2f MiB (%.1f%%), %.3f -> %.3f bits per weight, %lld params\n",
                (double)s.bytes_in / (1 << 20), (double)s.bytes_out / (1 << 20),
                s.bytes_in ? 100.0 * (double)s.bytes_out / (double)s.bytes_in : 0.0, s.bpw_in(), s.bpw_out(),
                (long long)s.n_params);
  out += buf;
  if (with_imatrix) out += "  importance matrix used for " + std::to_string(with_imatrix) + " tensors\n";
  for (const std::string& wmsg : s.warnings) out += "  warning: " + wmsg + "\n";
  return out;
}

}  // namespace frugal
