// The on-disk cache of repacked weight copies (repack_cache.h): a saved cache is adopted by a fresh
// scratch and gives the same bits without repacking; a damaged copy is rejected and rebuilt; a cache of
// another model, a truncated file or a foreign file is refused with a message; a missing file is no
// error; weights outside the model's range are not written.
#include "backend/repack_cache.h"

#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "backend/matmul.h"
#include "backend/quant.h"
#include "gtest/gtest.h"
#include "tensor/dtype.h"

namespace frugal {
namespace {

struct Fixture {
  std::vector<uint8_t> model;  // three weight matrices back to back, 64-byte aligned
  std::vector<WeightView> weights;
  std::vector<float> x;        // T x K activations (K = the largest row)
  static constexpr int64_t kT = 16;  // >= every format's repack_min_T
};

Fixture make_fixture() {
  const struct {
    DType type;
    int64_t K, N;
  } specs[] = {{DType::Q4_0, 256, 40}, {DType::Q8_0, 512, 33}, {DType::Q4_K, 256, 17}};
  Fixture f;
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<size_t> offsets;
  size_t at = 0;
  for (const auto& s : specs) {
    const size_t rb = dtype_row_bytes(s.type, s.K);
    offsets.push_back(at);
    at = (at + rb * (size_t)s.N + 63) / 64 * 64;
  }
  f.model.resize(at);
  for (size_t i = 0; i < std::size(specs); ++i) {
    const auto& s = specs[i];
    const size_t rb = dtype_row_bytes(s.type, s.K);
    std::vector<float> row((size_t)s.K);
    for (int64_t r = 0; r < s.N; ++r) {
      for (float& v : row) v = d(rng);
      quantize_row_weights(s.type, row.data(), f.model.data() + offsets[i] + (size_t)r * rb, s.K);
    }
    f.weights.push_back(WeightView{s.type, s.K, s.N, f.model.data() + offsets[i], rb});
  }
  f.x.resize((size_t)(Fixture::kT * 512));
  for (float& v : f.x) v = d(rng);
  return f;
}

// y of every weight (T x N each), concatenated.
std::vector<float> run_all(const Fixture& f, MatmulScratch& scratch) {
  std::vector<float> out;
  for (const WeightView& w : f.weights) {
    std::vector<float> y((size_t)(Fixture::kT * w.N));
    std::vector<float> x((size_t)(Fixture::kT * w.K));
    for (int64_t t = 0; t < Fixture::kT; ++t)
      for (int64_t k = 0; k < w.K; ++k) x[(size_t)(t * w.K + k)] = f.x[(size_t)(t * 512 + k)];
    matmul_cpu(nullptr, Isa::kAvx512, w, x.data(), Fixture::kT, y.data(), scratch);
    out.insert(out.end(), y.begin(), y.end());
  }
  return out;
}

std::string tmp_path(const char* name) { return testing::TempDir() + "frugal_repack_cache_" + name; }

RepackCacheSpec spec_for(const Fixture& f, const std::string& path, uint64_t id = 42) {
  return RepackCacheSpec{path, f.model.data(), f.model.size(), id};
}

void poke(const std::string& path, uint64_t at, uint8_t xor_with) {
  std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
  io.seekg((std::streamoff)at);
  char c = 0;
  io.read(&c, 1);
  c = (char)(c ^ xor_with);
  io.seekp((std::streamoff)at);
  io.write(&c, 1);
}

uint64_t read_u64(const std::string& path, uint64_t at) {
  std::ifstream in(path, std::ios::binary);
  in.seekg((std::streamoff)at);
  uint64_t v = 0;
  in.read(reinterpret_cast<char*>(&v), 8);
  return v;
}

class RepackCache : public testing::Test {
 protected:
  void SetUp() override {
    if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "repacked kernels are AVX-512 only";
  }
};

TEST_F(RepackCache, SavedCopiesAreAdoptedAndGiveTheSameBits) {
  const Fixture f = make_fixture();
  const std::string path = tmp_path("roundtrip.bin");
  MatmulScratch built;
  const std::vector<float> want = run_all(f, built);
  ASSERT_EQ(built.built_copies(), 3);
  StatusOr<int> n = save_repack_cache(built, Isa::kAvx512, spec_for(f, path));
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(*n, 3);

  MatmulScratch loaded;
  StatusOr<RepackCacheLoad> r = load_repack_cache(loaded, Isa::kAvx512, spec_for(f, path));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->adopted, 3);
  EXPECT_EQ(r->rejected, 0);
  EXPECT_EQ(r->bytes, built.repacked_bytes());
  EXPECT_EQ(run_all(f, loaded), want);
  EXPECT_EQ(loaded.built_copies(), 0);  // every matmul found its copy
  std::remove(path.c_str());
}

TEST_F(RepackCache, DamagedCopyIsRejectedAndRebuilt) {
  const Fixture f = make_fixture();
  const std::string path = tmp_path("damaged.bin");
  MatmulScratch built;
  const std::vector<float> want = run_all(f, built);
  ASSERT_TRUE(save_repack_cache(built, Isa::kAvx512, spec_for(f, path)).ok());
  // Entry 0's file offset: header 48 bytes, then entries of 56 bytes with the file offset last.
  const uint64_t data0 = read_u64(path, 48 + 48);
  ASSERT_EQ(data0 % 4096, 0u);
  poke(path, data0 + 5, 0x5A);
  MatmulScratch loaded;
  StatusOr<RepackCacheLoad> r = load_repack_cache(loaded, Isa::kAvx512, spec_for(f, path));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->adopted, 2);
  EXPECT_EQ(r->rejected, 1);
  EXPECT_EQ(run_all(f, loaded), want);
  EXPECT_EQ(loaded.built_copies(), 1);
  std::remove(path.c_str());
}

TEST_F(RepackCache, ForeignStaleOrTruncatedFilesAreRefusedWithAReason) {
  const Fixture f = make_fixture();
  const std::string path = tmp_path("refused.bin");
  MatmulScratch built;
  run_all(f, built);
  ASSERT_TRUE(save_repack_cache(built, Isa::kAvx512, spec_for(f, path)).ok());
  auto refused = [&](const RepackCacheSpec& spec, const std::string& says) {
    MatmulScratch s;
    StatusOr<RepackCacheLoad> r = load_repack_cache(s, Isa::kAvx512, spec);
    ASSERT_FALSE(r.ok()) << says;
    EXPECT_NE(r.status().message().find(says), std::string::npos) << r.status().message();
    EXPECT_TRUE(s.repacked_copies().empty());
  };
  refused(spec_for(f, path, 43), "another model file");
  {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(all.data(), (std::streamsize)(all.size() / 2));
  }
  refused(spec_for(f, path), "copy outside the file");
  poke(path, 0, 0xFF);
  refused(spec_for(f, path), "not a frugal repack cache");
  std::remove(path.c_str());

  MatmulScratch s;  // no file yet: nothing to adopt, no error
  StatusOr<RepackCacheLoad> r = load_repack_cache(s, Isa::kAvx512, spec_for(f, tmp_path("missing.bin")));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->adopted, 0);
}

TEST_F(RepackCache, OnlyTheModelsWeightsAreWritten) {
  const Fixture f = make_fixture();
  const std::string path = tmp_path("range.bin");
  MatmulScratch built;
  run_all(f, built);
  // A "model" that ends before the third weight.
  RepackCacheSpec spec = spec_for(f, path);
  spec.size = (size_t)(f.weights[2].data - f.model.data());
  StatusOr<int> n = save_repack_cache(built, Isa::kAvx512, spec);
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(*n, 2);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace frugal
