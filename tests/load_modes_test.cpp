// Load modes: a model read into anonymous huge-page memory (--no-mmap) or locked (--mlock) must compute
// bit-identical logits to the memory-mapped one, on stories260K and golden models of each architecture;
// a truncated file read with --no-mmap fails with an error naming the file.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "backend/backend.h"
#include "base/mapped_file.h"
#include "base/thread_pool.h"
#include "model/model.h"

namespace frugal {
namespace {

const std::string kShared = std::string(FRUGAL_SHARED_DIR) + "/";

// Logits [T, V] of a fixed token sequence (batch mode, F32 KV).
std::vector<float> run_logits(Model& m, Backend& be) {
  const int64_t T = 6, V = m.config().n_vocab;
  std::vector<int32_t> tokens(T), pos(T);
  for (int64_t t = 0; t < T; ++t) tokens[t] = (int32_t)((1 + 37 * t) % V), pos[t] = (int32_t)t;
  KvCache kv(m.config(), 16, DType::F32);
  std::vector<float> logits((size_t)(T * V));
  const Status s = m.forward(be, kv, tokens.data(), pos.data(), T, logits.data(), LogitsMode::kAll);
  EXPECT_TRUE(s.ok()) << s.message();
  return logits;
}

class GoldenLoadModes : public testing::TestWithParam<std::string> {};

TEST_P(GoldenLoadModes, NoMmapAndMlockGiveBitIdenticalLogits) {
  const std::string path = kShared + GetParam();
  if (access(path.c_str(), R_OK) != 0) GTEST_SKIP() << path << " not present";
  ThreadPool pool(2);
  std::unique_ptr<Backend> be = make_cpu_backend(&pool, detect_isa());
  auto mapped = Model::load(path);
  ASSERT_TRUE(mapped.ok()) << mapped.status().message();
  EXPECT_EQ((*mapped)->gguf().mapped()->mode(), LoadMode::kMmap);
  const std::vector<float> want = run_logits(**mapped, *be);

  LoadOptions read;
  read.mode = LoadMode::kRead;
  read.pool = &pool;
  auto loaded = Model::load(path, read);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const MappedFile* mf = (*loaded)->gguf().mapped();
  ASSERT_NE(mf, nullptr);
  EXPECT_EQ(mf->mode(), LoadMode::kRead);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(mf->data()) % (2 << 20), 0u) << "weight buffer not 2 MiB aligned";
  const std::vector<float> got = run_logits(**loaded, *be);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << "--no-mmap logits differ";

  LoadOptions lock;
  lock.lock = true;  // a refused lock (RLIMIT_MEMLOCK) is a warning: the model still loads
  auto locked = Model::load(path, lock);
  ASSERT_TRUE(locked.ok()) << locked.status().message();
  const MappedFile* lf = (*locked)->gguf().mapped();
  EXPECT_TRUE(lf->locked() != !lf->lock_warning().empty()) << lf->lock_warning();
  const std::vector<float> got_locked = run_logits(**locked, *be);
  EXPECT_EQ(std::memcmp(got_locked.data(), want.data(), want.size() * sizeof(float)), 0) << "--mlock logits differ";
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenLoadModes,
                         testing::Values("models/stories260K.gguf", "golden/llama-gqa-Q4_0.gguf",
                                         "golden/llama-gqa-Q4_K_M.gguf", "golden/qwen2-Q8_0.gguf",
                                         "golden/deepseek-moe-Q4_K_M.gguf", "golden/deepseek2-v3-Q4_K_M.gguf"),
                         [](const testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param.substr(i.param.find('/') + 1);
                           n = n.substr(0, n.size() - 5);
                           for (char& c : n)
                             if (!std::isalnum((unsigned char)c)) c = '_';
                           return n;
                         });

TEST(StoriesLoadModes, TruncatedFileWithNoMmapIsAnErrorNamingTheFile) {
  const std::string src = kShared + "models/stories260K.gguf";
  if (access(src.c_str(), R_OK) != 0) GTEST_SKIP() << src << " not present";
  std::ifstream in(src, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 1000u);
  const std::string cut = testing::TempDir() + "load_modes_truncated.gguf";
  {
    std::ofstream out(cut, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), (std::streamsize)(bytes.size() / 2));
  }
  LoadOptions read;
  read.mode = LoadMode::kRead;
  auto m = Model::load(cut, read);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message().rfind(cut, 0), 0u) << m.status().message();
  std::remove(cut.c_str());
}

}  // namespace
}  // namespace frugal
