// MappedFile load modes (mmap / read into huge-page memory / mlock) and HugeBuffer.
#include "base/mapped_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "base/huge_pages.h"
#include "base/thread_pool.h"

namespace frugal {
namespace {

// A temp file of n pseudo-random bytes; returns its path.
std::string write_temp(const std::string& name, size_t n, std::vector<uint8_t>* bytes) {
  bytes->resize(n);
  uint32_t x = 12345;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    (*bytes)[i] = (uint8_t)(x >> 24);
  }
  const std::string path = testing::TempDir() + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes->data()), (std::streamsize)n);
  return path;
}

TEST(MappedFile, ReadModeHoldsTheSameBytesAsMmap) {
  std::vector<uint8_t> bytes;
  const size_t n = (size_t(16) << 20) * 3 + 12345;  // several read chunks and a partial last one
  const std::string path = write_temp("mapped_file_read.bin", n, &bytes);
  ThreadPool pool(2);
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    LoadOptions o;
    o.mode = LoadMode::kRead;
    o.pool = p;
    std::vector<uint64_t> seen;
    o.progress = [&](uint64_t done, uint64_t total) {
      EXPECT_EQ(total, n);
      seen.push_back(done);
    };
    auto f = MappedFile::open(path, o);
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_EQ((*f)->mode(), LoadMode::kRead);
    ASSERT_EQ((*f)->size(), n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>((*f)->data()) % kHugePageSize, 0u);
    EXPECT_EQ(std::memcmp((*f)->data(), bytes.data(), n), 0);
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back(), n);
    for (size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i], seen[i - 1]);
    (*f)->prefetch(0, n);  // a no-op for read mode; must not crash
  }
  auto m = MappedFile::open(path);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->mode(), LoadMode::kMmap);
  EXPECT_EQ(std::memcmp((*m)->data(), bytes.data(), n), 0);
  LoadOptions pop;  // mmap with every page populated at open: same bytes
  pop.populate = true;
  auto mp = MappedFile::open(path, pop);
  ASSERT_TRUE(mp.ok()) << mp.status().message();
  EXPECT_EQ((*mp)->mode(), LoadMode::kMmap);
  EXPECT_EQ(std::memcmp((*mp)->data(), bytes.data(), n), 0);
  std::remove(path.c_str());
}

TEST(MappedFile, EmptyFileInReadMode) {
  std::vector<uint8_t> bytes;
  const std::string path = write_temp("mapped_file_empty.bin", 0, &bytes);
  LoadOptions o;
  o.mode = LoadMode::kRead;
  auto f = MappedFile::open(path, o);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ((*f)->size(), 0u);
  std::remove(path.c_str());
}

TEST(MappedFile, MissingFileErrorNamesThePath) {
  LoadOptions o;
  o.mode = LoadMode::kRead;
  auto f = MappedFile::open("/nonexistent/frugal/x.gguf", o);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
  EXPECT_NE(f.status().message().find("/nonexistent/frugal/x.gguf"), std::string::npos);
}

// A sysfs attribute reports st_size 4096 but yields only a few bytes: the read comes up short.
TEST(MappedFile, ShortReadIsAnErrorNamingTheFile) {
  const char* path = "/sys/kernel/mm/transparent_hugepage/enabled";
  struct stat st {};
  if (stat(path, &st) != 0 || st.st_size <= 200) GTEST_SKIP() << "no sysfs attribute with a padded size here";
  LoadOptions o;
  o.mode = LoadMode::kRead;
  auto f = MappedFile::open(path, o);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kIo);
  EXPECT_EQ(f.status().message().rfind(path, 0), 0u) << f.status().message();
  EXPECT_NE(f.status().message().find("short read"), std::string::npos) << f.status().message();
}

TEST(MappedFile, LockIsHonouredOrExplained) {
  std::vector<uint8_t> bytes;
  const std::string path = write_temp("mapped_file_lock.bin", 1 << 20, &bytes);
  for (LoadMode mode : {LoadMode::kMmap, LoadMode::kRead}) {
    LoadOptions o;
    o.mode = mode;
    o.lock = true;
    auto f = MappedFile::open(path, o);
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_NE((*f)->locked(), !(*f)->lock_warning().empty());
    if (!(*f)->locked()) {
      EXPECT_NE((*f)->lock_warning().find("RLIMIT_MEMLOCK"), std::string::npos);
    }
    EXPECT_EQ(std::memcmp((*f)->data(), bytes.data(), bytes.size()), 0);
  }
  std::remove(path.c_str());
}

TEST(HugeBuffer, AlignedZeroedAndMovable) {
  auto b = HugeBuffer::allocate(3 * kHugePageSize + 5, "test buffer");
  ASSERT_TRUE(b.ok()) << b.status().message();
  HugeBuffer buf = std::move(b).value();
  ASSERT_NE(buf.data(), nullptr);
  EXPECT_EQ(buf.size(), 3 * kHugePageSize + 5);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(buf.data()) % kHugePageSize, 0u);
  for (size_t i = 0; i < buf.size(); i += 4093) ASSERT_EQ(buf.data()[i], 0);
  buf.data()[buf.size() - 1] = 7;
  HugeBuffer moved = std::move(buf);
  EXPECT_EQ(buf.data(), nullptr);
  EXPECT_EQ(moved.data()[moved.size() - 1], 7);
  auto empty = HugeBuffer::allocate(0, "empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->data(), nullptr);
}

TEST(HugeBuffer, ImpossibleSizeIsAnError) {
  auto b = HugeBuffer::allocate(SIZE_MAX / 2, "huge test buffer");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(b.status().message().find("huge test buffer"), std::string::npos);
}

TEST(HugePages, ThpModeIsAKnownValue) {
  const std::string m = thp_mode();
  EXPECT_TRUE(m == "always" || m == "madvise" || m == "never" || m == "unavailable") << m;
}

}  // namespace
}  // namespace frugal
