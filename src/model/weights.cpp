#include "model/weights.h"

#include "backend/quant.h"
#include "base/check.h"
#include "tensor/sparse_nm.h"

namespace frugal {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "{";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "}";
}

}  // namespace

StatusOr<const GgufTensorInfo*> WeightLoader::find(const std::string& name, std::vector<int64_t> shape,
                                                   bool optional) {
  const GgufTensorInfo* t = f_.tensor(name);
  if (!t) {
    if (optional) return (const GgufTensorInfo*)nullptr;
    return not_found(f_.path() + ": required tensor '" + name + "' is missing");
  }
  bool ok = true;  // trailing dims of 1 are equivalent ({n} == {n, 1})
  for (size_t i = 0; i < 4; ++i) {
    const int64_t want = i < shape.size() ? shape[i] : 1;
    if (t->ne[i] != want) ok = false;
  }
  if (!ok)
    return corrupt(f_.path() + ": tensor '" + name + "' has shape " + t->shape_string() + ", expected " +
                   shape_str(shape));
  const DTypeInfo& info = dtype_info(t->type);
  if (!info.implemented || !quant_traits(t->type, Isa::kScalar))
    return unsupported(f_.path() + ": tensor '" + name + "' has type " + info.name +
                       ", which frugal cannot compute with yet");
  if (const SparseTypeInfo* sp = sparse_type_info(t->type))  // N:M sparse: every keep mask well-formed
    FRUGAL_RETURN_IF_ERROR(validate_sparse_rows(*sp, t->data, t->ne[0], t->n_elements() / t->ne[0],
                                                f_.path() + ": tensor '" + name + "'"));
  bytes_ += t->nbytes;
  params_ += (uint64_t)t->n_elements();
  return t;
}

StatusOr<WeightView> WeightLoader::matrix(const std::string& name, int64_t K, int64_t N, bool optional) {
  FRUGAL_ASSIGN_OR_RETURN(const GgufTensorInfo* t, find(name, {K, N}, optional));
  WeightView w;
  if (!t) return w;
  w.type = t->type;
  w.K = K;
  w.N = N;
  w.data = t->data;
  w.row_bytes = t->row_bytes();
  return w;
}

StatusOr<WeightView> WeightLoader::stacked(const std::string& name, int64_t K, int64_t N, int64_t n_mat,
                                           bool optional) {
  FRUGAL_ASSIGN_OR_RETURN(const GgufTensorInfo* t, find(name, {K, N, n_mat}, optional));
  WeightView w;
  if (!t) return w;
  w.type = t->type;
  w.K = K;
  w.N = N * n_mat;
  w.data = t->data;
  w.row_bytes = t->row_bytes();
  return w;
}

WeightView weight_rows(const WeightView& w, int64_t r0, int64_t n) {
  FRUGAL_CHECK(r0 >= 0 && n >= 0 && r0 + n <= w.N);
  WeightView r = w;
  r.data = w.data + (size_t)r0 * w.row_bytes;
  r.N = n;
  return r;
}

StatusOr<const float*> WeightLoader::vector(const std::string& name, int64_t n, bool optional) {
  FRUGAL_ASSIGN_OR_RETURN(const GgufTensorInfo* t, find(name, {n}, optional));
  if (!t) return (const float*)nullptr;
  if (t->type == DType::F32 && reinterpret_cast<uintptr_t>(t->data) % alignof(float) == 0)
    return reinterpret_cast<const float*>(t->data);
  owned_.emplace_back((size_t)n);
  quant_traits(t->type, Isa::kScalar)->to_float(t->data, owned_.back().data(), n);
  return (const float*)owned_.back().data();
}

}  // namespace frugal
