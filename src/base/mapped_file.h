// MappedFile: a whole file's bytes in memory, read-only to its users. Move-only; frees on destruction.
//
// Two ways in (LoadOptions::mode):
//   kMmap  a read-only, private mmap of the file (the default; pages come from the page cache on demand,
//          and the kernel may drop them again under memory pressure);
//   kRead  the file read (pread, in parallel chunks on an optional ThreadPool) into an anonymous,
//          2 MiB-aligned HugeBuffer advised MADV_HUGEPAGE: the bytes stay in this process's memory
//          (llama.cpp's --no-mmap), which the kernel cannot evict without swap.
// Either way data() holds the exact file bytes. With lock = true the bytes are also mlock'ed; a refusal
// (RLIMIT_MEMLOCK, ENOMEM) is not an error: lock_warning() says why and the file is used unlocked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/huge_pages.h"
#include "base/status.h"

namespace frugal {

class ThreadPool;

enum class LoadMode { kMmap, kRead };

struct LoadOptions {
  LoadMode mode = LoadMode::kMmap;
  bool lock = false;             // mlock the bytes (warning, not error, when refused)
  // kMmap: MAP_POPULATE, i.e. read the file into the page cache and map every page at open (as llama.cpp's
  // mmap does), so that decoding does not take a page fault per 4 KiB of weights it touches first (a MoE
  // model reaches its experts over many tokens). The model-loading commands set it; a plain
  // GgufFile::open (inspect, quantize) does not.
  bool populate = false;
  ThreadPool* pool = nullptr;    // kRead: parallel chunk reads on this pool (nullptr: the calling thread)
  // kRead: called from the calling thread as chunks finish (done <= total bytes), at most ~100 times.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

class MappedFile {
 public:
  // Maps `path` read-only. Errors: not found / not a regular file / mmap failure, naming the path.
  static StatusOr<std::unique_ptr<MappedFile>> open(const std::string& path);
  // Maps or reads `path` as `opt` says. Errors name the path: not found, not a regular file, mmap failure,
  // kRead: not enough memory (out_of_range), a read error or a short read (the file shrank: io_error).
  static StatusOr<std::unique_ptr<MappedFile>> open(const std::string& path, const LoadOptions& opt);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  LoadMode mode() const { return mode_; }
  // kRead: whether the buffer was advised MADV_HUGEPAGE (the kernel may still grant fewer huge pages).
  bool huge_advised() const { return buffer_.huge_advised(); }
  bool locked() const { return locked_; }
  // Why LoadOptions::lock was not honoured ("" when it was or was not asked for).
  const std::string& lock_warning() const { return lock_warning_; }

  // Hints that [offset, offset+len) will be read soon (MADV_WILLNEED); harmless if refused. No-op for kRead.
  void prefetch(size_t offset, size_t len) const;

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size) : path_(std::move(path)), data_(data), size_(size) {}
  static StatusOr<std::unique_ptr<MappedFile>> read_file(const std::string& path, int fd, size_t size,
                                                         const LoadOptions& opt);
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  LoadMode mode_ = LoadMode::kMmap;
  HugeBuffer buffer_;  // kRead: owns data_
  bool locked_ = false;
  std::string lock_warning_;
};

}  // namespace frugal
