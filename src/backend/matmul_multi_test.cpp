// Backend::matmul_multi: several independent matmuls (mixed types, shapes and token counts) in one call
// give bit-identical results to one matmul() per job, on every ISA path and thread count.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/quant.h"
#include "base/rng.h"
#include "base/thread_pool.h"

namespace frugal {
namespace {

struct OwnedWeight {
  std::vector<uint8_t> bytes;
  WeightView view;
};

OwnedWeight random_weight(DType type, int64_t K, int64_t N, Rng& rng) {
  OwnedWeight w;
  const size_t row_bytes = dtype_row_bytes(type, K);
  w.bytes.resize(row_bytes * (size_t)N);
  std::vector<float> row((size_t)K);
  for (int64_t r = 0; r < N; ++r) {
    for (float& x : row) x = (float)(rng.next_double() * 2.0 - 1.0);
    if (type == DType::F32) {
      std::memcpy(w.bytes.data() + (size_t)r * row_bytes, row.data(), row_bytes);
    } else {
      quantize_row_weights(type, row.data(), w.bytes.data() + (size_t)r * row_bytes, K);
    }
  }
  w.view.type = type;
  w.view.K = K;
  w.view.N = N;
  w.view.data = w.bytes.data();
  w.view.row_bytes = row_bytes;
  return w;
}

TEST(MatmulMulti, EqualsOneMatmulPerJob) {
  struct Spec {
    DType type;
    int64_t K, N, T;
  };
  const std::vector<Spec> specs = {
      {DType::F32, 64, 40, 1}, {DType::F16, 128, 96, 3},  {DType::Q8_0, 256, 33, 1}, {DType::Q4_K, 256, 130, 7},
      {DType::Q5_0, 96, 512, 1}, {DType::Q6_K, 512, 17, 2}, {DType::Q8_0, 64, 1, 5},   {DType::BF16, 32, 64, 0},
  };
  Rng rng(5);
  std::vector<OwnedWeight> weights;
  std::vector<std::vector<float>> xs;
  for (const Spec& s : specs) {
    weights.push_back(random_weight(s.type, s.K, s.N, rng));
    std::vector<float> x((size_t)(s.K * std::max<int64_t>(s.T, 1)));
    for (float& v : x) v = (float)(rng.next_double() * 4.0 - 2.0);
    xs.push_back(std::move(x));
  }
  ThreadPool pool1(1), pool3(3);
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(make_ref_backend());
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (!isa_supported(isa)) continue;
    backends.push_back(make_cpu_backend(&pool1, isa));
    backends.push_back(make_cpu_backend(&pool3, isa));
  }
  for (auto& be : backends) {
    std::vector<std::vector<float>> single(specs.size()), multi(specs.size());
    std::vector<Backend::MatmulJob> jobs;
    for (size_t i = 0; i < specs.size(); ++i) {
      single[i].assign((size_t)(specs[i].N * std::max<int64_t>(specs[i].T, 1)), -1.f);
      multi[i] = single[i];
      if (specs[i].T > 0) be->matmul(weights[i].view, xs[i].data(), specs[i].T, single[i].data());
      jobs.push_back({weights[i].view, xs[i].data(), specs[i].T, multi[i].data()});
    }
    be->matmul_multi(jobs.data(), (int64_t)jobs.size());
    for (size_t i = 0; i < specs.size(); ++i)
      EXPECT_EQ(multi[i], single[i]) << be->name() << " job " << i << " (" << dtype_name(specs[i].type) << ")";
  }
}

// Jobs that share one x (a MoE decode step: every expert's gate and up read the same token) are converted
// once; jobs with the same x but another T, K or vec_dot_type must not reuse that conversion. Every y still
// equals its own matmul().
TEST(MatmulMulti, SharedActivationsEqualOneMatmulPerJob) {
  struct Spec {
    DType type;
    int64_t K, N, T;
    int x;  // which activation buffer
  };
  const std::vector<Spec> specs = {
      {DType::Q4_K, 256, 48, 1, 0}, {DType::Q4_K, 256, 40, 1, 0}, {DType::Q5_0, 256, 64, 1, 0},
      {DType::Q8_0, 256, 32, 1, 0}, {DType::Q4_K, 256, 32, 2, 0}, {DType::Q6_K, 256, 16, 1, 0},
      {DType::F32, 256, 16, 1, 0},  {DType::Q8_0, 128, 48, 1, 0}, {DType::Q4_K, 512, 130, 1, 1},
      {DType::Q4_K, 512, 66, 1, 1}, {DType::Q4_0, 512, 300, 3, 1}, {DType::Q4_0, 512, 20, 3, 1},
  };
  Rng rng(9);
  std::vector<OwnedWeight> weights;
  std::vector<std::vector<float>> xs(2);
  for (auto& x : xs) {
    x.resize(512 * 3);
    for (float& v : x) v = (float)(rng.next_double() * 4.0 - 2.0);
  }
  for (const Spec& s : specs) weights.push_back(random_weight(s.type, s.K, s.N, rng));
  ThreadPool pool2(2), pool3(3);
  std::vector<std::unique_ptr<Backend>> backends;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (!isa_supported(isa)) continue;
    backends.push_back(make_cpu_backend(&pool2, isa));
    backends.push_back(make_cpu_backend(&pool3, isa));
  }
  for (auto& be : backends) {
    std::vector<std::vector<float>> single(specs.size()), multi(specs.size());
    std::vector<Backend::MatmulJob> jobs;
    for (size_t i = 0; i < specs.size(); ++i) {
      single[i].assign((size_t)(specs[i].N * specs[i].T), -1.f);
      multi[i] = single[i];
      be->matmul(weights[i].view, xs[(size_t)specs[i].x].data(), specs[i].T, single[i].data());
      jobs.push_back({weights[i].view, xs[(size_t)specs[i].x].data(), specs[i].T, multi[i].data()});
    }
    be->matmul_multi(jobs.data(), (int64_t)jobs.size());
    for (size_t i = 0; i < specs.size(); ++i)
      EXPECT_EQ(multi[i], single[i]) << be->name() << " job " << i << " (" << dtype_name(specs[i].type) << ")";
  }
}

}  // namespace
}  // namespace frugal
