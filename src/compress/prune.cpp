#include "compress/prune.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <regex>

#include "backend/quant.h"
#include "base/check.h"
#include "base/thread_pool.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "tensor/sparse_nm.h"

namespace frugal {

namespace {

bool is_float_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

std::string tensor_class(const std::string& name) {
  if (name.find("norm") != std::string::npos) return "norm";
  if (name.rfind("token_embd", 0) == 0) return "token_embd";
  if (name.rfind("output", 0) == 0) return "output";
  if (name.find(".attn_") != std::string::npos) return "attn";
  if (name.find(".ffn_") != std::string::npos) return "ffn";
  return "other";
}

// llama.cpp's general.file_type for a pure file of `t`.
uint32_t file_type_of(DType t) { return t == DType::Q8_0 ? 7 : t == DType::Q4_0 ? 2 : 1; }

struct Plan {
  const GgufTensorInfo* t;
  PruneTensorReport rep;
  const std::vector<float>* col_sq = nullptr;  // Wanda statistics
  bool convert = false;                        // re-encode (pruned or float -> base type)
};

// Encodes rows [r0, r1) of plan p into dst (the output tensor's bytes). Returns zeros written.
int64_t encode_rows(const Plan& p, const PruneOptions& opt, DType base, int64_t r0, int64_t r1, uint8_t* dst) {
  const GgufTensorInfo& t = *p.t;
  const int64_t n = t.ne[0];
  const QuantTraits* in = quant_traits(t.type, Isa::kScalar);
  const QuantTraits* out_base = quant_traits(base, Isa::kScalar);
  const size_t in_rb = t.row_bytes(), out_rb = dtype_row_bytes(p.rep.out_type, n);
  const size_t dense_rb = dtype_row_bytes(base, n);
  const SparseTypeInfo* sp = sparse_type_info(p.rep.out_type);
  std::vector<float> w((size_t)n), imp((size_t)n), back((size_t)n);
  std::vector<uint32_t> masks((size_t)(n / kSparseBlock));
  std::vector<uint8_t> dense(dense_rb);
  const int64_t rows_per_slice = t.ne[1];
  int64_t zeros = 0;
  for (int64_t r = r0; r < r1; ++r) {
    in->to_float(t.data + (size_t)r * in_rb, w.data(), n);
    if (p.rep.pruned) {
      const float* cs = p.col_sq ? p.col_sq->data() + (size_t)((r / rows_per_slice) * n) : nullptr;
      prune_importance(w.data(), cs, n, imp.data());
      nm_keep_masks(imp.data(), n, opt.n, opt.m, masks.data());
      for (int64_t j = 0; j < n; ++j)
        if (!(masks[(size_t)(j / 32)] >> (j % 32) & 1)) w[(size_t)j] = 0.0f;
    }
    uint8_t* o = dst + (size_t)(r - r0) * out_rb;
    quantize_row_weights(base, w.data(), sp ? dense.data() : o, n);
    if (sp) sparse_compress_row(*sp, dense.data(), masks.data(), o, n);
    out_base->to_float(sp ? dense.data() : o, back.data(), n);
    for (float v : back) zeros += v == 0.0f;
  }
  return zeros;
}

}  // namespace

void nm_keep_masks(const float* importance, int64_t n, int n_keep, int m, uint32_t* masks) {
  FRUGAL_CHECK(n % kSparseBlock == 0 && m > 0 && m <= 16 && kSparseBlock % m == 0 && n_keep >= 0 && n_keep <= m);
  for (int64_t b = 0; b < n / kSparseBlock; ++b) {
    uint32_t mask = 0;
    for (int g = 0; g < kSparseBlock / m; ++g) {
      const int64_t base = b * kSparseBlock + g * m;
      std::array<int, 16> idx{};
      for (int j = 0; j < m; ++j) idx[(size_t)j] = j;
      std::stable_sort(idx.begin(), idx.begin() + m,
                       [&](int a, int c) { return importance[base + a] > importance[base + c]; });
      for (int j = 0; j < n_keep; ++j) mask |= 1u << (g * m + idx[(size_t)j]);
    }
    masks[b] = mask;
  }
}

void prune_importance(const float* w, const float* col_sq, int64_t n, float* out) {
  for (int64_t j = 0; j < n; ++j) {
    const float a = std::fabs(w[j]);
    out[j] = col_sq ? a * std::sqrt(std::max(col_sq[j], 0.0f)) : a;
  }
}

const char* prune_default_only() {
  return R"(\.(attn_(q|k|v|qkv|output|q_a|q_b|kv_a_mqa|kv_b)|ffn_(gate|up|down)(_exps|_shexp)?)\.weight$)";
}

Status prune_gguf(const std::string& in_path, const std::string& out_path, const PruneOptions& opt,
                  PruneReport* report) {
  DType sparse_probe;
  if (!sparse_type_for(DType::Q8_0, opt.n, opt.m, &sparse_probe))
    return invalid_argument("prune: unsupported pattern " + std::to_string(opt.n) + ":" + std::to_string(opt.m) +
                            " (supported: " + sparse_patterns_string() + ")");
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> f, GgufFile::open(in_path));
  std::regex only, skip;
  try {
    only = std::regex(opt.only.empty() ? prune_default_only() : opt.only);
    if (!opt.skip.empty()) skip = std::regex(opt.skip);
  } catch (const std::regex_error& e) {
    return invalid_argument(std::string("prune: bad --only/--skip regex: ") + e.what());
  }
  // Base type: explicit, else the Q8_0/Q4_0/F16 type holding most elements of the matrices to prune
  // (a Q4_0 file may keep token_embd or output in Q8_0), else Q8_0.
  DType base = opt.type;
  if (base != DType::Q8_0 && base != DType::Q4_0 && base != DType::F16) {
    if (base != (DType)~0u && base != DType::F32)
      return invalid_argument(std::string("prune: --type must be Q8_0, Q4_0 or F16, not ") + dtype_name(base));
    base = DType::Q8_0;
    int64_t most = 0;
    for (DType c : {DType::Q8_0, DType::Q4_0, DType::F16}) {
      int64_t n = 0;
      for (const GgufTensorInfo& t : f->tensors())
        if (t.n_dims >= 2 && t.type == c && std::regex_search(t.name, only)) n += t.n_elements();
      if (n > most) {
        most = n;
        base = c;
      }
    }
  }
  DType sparse_type;
  FRUGAL_CHECK(sparse_type_for(base, opt.n, opt.m, &sparse_type));
  std::vector<Plan> plans;
  for (const GgufTensorInfo& t : f->tensors()) {
    Plan p;
    p.t = &t;
    p.rep.name = t.name;
    p.rep.cls = tensor_class(t.name);
    p.rep.in_type = t.type;
    p.rep.elements = t.n_elements();
    p.rep.bytes_in = t.nbytes;
    const bool matrix = t.n_dims >= 2 && t.ne[0] % kSparseBlock == 0 && p.rep.cls != "norm";
    const bool computable = dtype_info(t.type).implemented && quant_traits(t.type, Isa::kScalar) != nullptr &&
                            !is_sparse_type(t.type);
    p.rep.pruned = matrix && computable && std::regex_search(t.name, only) &&
                   !(!opt.skip.empty() && std::regex_search(t.name, skip));
    p.convert = p.rep.pruned || (matrix && is_float_type(t.type) && t.type != base);
    p.rep.out_type = !p.convert ? t.type : (p.rep.pruned && !opt.dense_out) ? sparse_type : base;
    if (p.rep.pruned && !is_float_type(t.type) && t.type != base)
      report->warnings.push_back(t.name + ": " + dtype_name(t.type) + " input dequantized before pruning (" +
                                 "quality is that of a second quantization)");
    if (p.rep.pruned && opt.method == PruneMethod::kWanda) {
      auto it = opt.col_sq.find(t.name);
      if (it != opt.col_sq.end() && it->second.size() == (size_t)(t.ne[0] * t.ne[2] * t.ne[3])) {
        p.col_sq = &it->second;
        p.rep.wanda = true;
      } else {
        report->warnings.push_back(t.name + ": no activation statistics, pruned by magnitude");
      }
    }
    p.rep.bytes_out = p.convert ? dtype_row_bytes(p.rep.out_type, t.ne[0]) * (uint64_t)t.n_rows() : t.nbytes;
    plans.push_back(std::move(p));
  }
  GgufWriter w;
  w.copy_kvs(*f, "");
  w.set_u32("general.file_type", file_type_of(base));
  w.set_string("frugal.sparsity.pattern", std::to_string(opt.n) + ":" + std::to_string(opt.m));
  w.set_string("frugal.sparsity.method", opt.method == PruneMethod::kWanda ? "wanda" : "magnitude");
  w.set_string("frugal.sparsity.storage", opt.dense_out ? "dense" : dtype_name(sparse_type));
  auto pool = std::make_shared<ThreadPool>(std::max(1, opt.threads));
  for (Plan& p : plans) {
    std::vector<int64_t> ne(p.t->ne, p.t->ne + std::max(1, p.t->n_dims));
    if (!p.convert) {
      const GgufTensorInfo* t = p.t;
      w.add_tensor_lazy(t->name, t->type, ne, [t](uint8_t* dst) { std::copy(t->data, t->data + t->nbytes, dst); });
      continue;
    }
    Plan* pp = &p;
    w.add_tensor_lazy(p.t->name, p.rep.out_type, ne, [pp, &opt, base, pool](uint8_t* dst) {
      const size_t out_rb = dtype_row_bytes(pp->rep.out_type, pp->t->ne[0]);
      std::vector<int64_t> zeros((size_t)pool->n_threads(), 0);
      pool->parallel_range(pp->t->n_rows(), [&](int64_t r0, int64_t r1, int thread) {
        zeros[(size_t)thread] += encode_rows(*pp, opt, base, r0, r1, dst + (size_t)r0 * out_rb);
      });
      for (int64_t z : zeros) pp->rep.zeros_out += z;
    });
  }
  FRUGAL_RETURN_IF_ERROR(w.write(out_path));
  for (Plan& p : plans) report->tensors.push_back(p.rep);
  return Status::Ok();
}

std::string prune_summary(const PruneReport& r) {
  struct Acc {
    int tensors = 0, pruned = 0;
    int64_t elements = 0, zeros = 0;
    uint64_t in = 0, out = 0;
  };
  std::map<std::string, Acc> by;
  Acc total;
  for (const PruneTensorReport& t : r.tensors) {
    for (Acc* a : {&by[t.cls], &total}) {
      a->tensors++;
      a->pruned += t.pruned;
      a->elements += t.elements;
      a->zeros += t.pruned ? t.zeros_out : 0;
      a->in += t.bytes_in;
      a->out += t.bytes_out;
    }
  }
  std::string s;
  char line[256];
  std::snprintf(line, sizeof(line), "  %-11s %7s %7s %14s %12s %12s %8s %8s %9s\n", "class", "tensors", "pruned",
                "parameters", "MiB in", "MiB out", "bpw in", "bpw out", "zeros");
  s += line;
  auto row = [&](const std::string& name, const Acc& a) {
    std::snprintf(line, sizeof(line), "  %-11s %7d %7d %14lld %12.1f %12.1f %8.3f %8.3f %8.1f%%\n", name.c_str(),
                  a.tensors, a.pruned, (long long)a.elements, (double)a.in / 1048576.0, (double)a.out / 1048576.0,
                  a.elements ? 8.0 * (double)a.in / (double)a.elements : 0.0,
                  a.elements ? 8.0 * (double)a.out / (double)a.elements : 0.0,
                  a.elements ? 100.0 * (double)a.zeros / (double)a.elements : 0.0);
    s += line;
  };
  for (const auto& [name, a] : by) row(name, a);
  row("total", total);
  return s;
}

}  // namespace frugal
