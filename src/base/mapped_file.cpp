#include "base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "base/thread_pool.h"

namespace frugal {

namespace {

constexpr size_t kReadChunk = size_t(16) << 20;  // one pread task

// MemAvailable from /proc/meminfo in bytes, or 0 when unknown.
uint64_t mem_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream ss(line.substr(13));
    uint64_t kb = 0;
    ss >> kb;
    return kb * 1024;
  }
  return 0;
}

// Reads exactly n bytes at `offset` into dst, retrying short reads and EINTR. Errors name the path.
Status pread_fully(int fd, uint8_t* dst, size_t n, size_t offset, const std::string& path) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, dst + got, n - got, (off_t)(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      return io_error(path + ": read error at byte " + std::to_string(offset + got) + ": " + std::strerror(err));
    }
    if (r == 0)
      return io_error(path + ": short read: the file ended at byte " + std::to_string(offset + got) +
                      ", expected " + std::to_string(offset + n) + " (was it truncated while loading?)");
    got += (size_t)r;
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<MappedFile>> MappedFile::open(const std::string& path) { return open(path, LoadOptions{}); }

StatusOr<std::unique_ptr<MappedFile>> MappedFile::open(const std::string& path, const LoadOptions& opt) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return not_found(path + ": no such file");
    return io_error(path + ": cannot open: " + std::strerror(err));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return io_error(path + ": not a regular file");
  }
  const size_t size = (size_t)st.st_size;
  std::unique_ptr<MappedFile> f;
  if (opt.mode == LoadMode::kRead) {
    StatusOr<std::unique_ptr<MappedFile>> r = read_file(path, fd, size, opt);
    ::close(fd);
    if (!r.ok()) return r.status();
    f = std::move(r).value();
  } else {
    const uint8_t* data = nullptr;
    if (size > 0) {
      void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE | (opt.populate ? MAP_POPULATE : 0), fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        return io_error(path + ": mmap failed: " + std::strerror(err));
      }
      data = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
    f.reset(new MappedFile(path, data, size));
  }
  if (opt.lock && size > 0) {
    const Status s = lock_memory(f->data_, f->size_, path);
    f->locked_ = s.ok();
    if (!s.ok()) f->lock_warning_ = s.message();
  }
  return f;
}

StatusOr<std::unique_ptr<MappedFile>> MappedFile::read_file(const std::string& path, int fd, size_t size,
                                                            const LoadOptions& opt) {
  const uint64_t avail = mem_available_bytes();
  if (avail > 0 && size > avail)
    return out_of_range(path + ": reading the file into memory (--no-mmap) needs " + std::to_string(size) +
                        " bytes, but only " + std::to_string(avail) + " are available (use --mmap)");
  FRUGAL_ASSIGN_OR_RETURN(HugeBuffer buf, HugeBuffer::allocate(size, path + ": weight buffer"));
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);  // advisory
  const int64_t n_chunks = (int64_t)((size + kReadChunk - 1) / kReadChunk);
  const int n_threads = opt.pool ? opt.pool->n_threads() : 1;
  // Chunks per progress step: about 1% of the file, at least one chunk per thread.
  const int64_t step = std::max<int64_t>(n_threads, (n_chunks + 99) / 100);
  std::mutex mu;
  Status first_error = Status::Ok();
  for (int64_t c0 = 0; c0 < n_chunks && first_error.ok(); c0 += step) {
    const int64_t c1 = std::min(n_chunks, c0 + step);
    auto task = [&](int64_t i, int) {
      const size_t off = (size_t)(c0 + i) * kReadChunk;
      const Status s = pread_fully(fd, buf.data() + off, std::min(kReadChunk, size - off), off, path);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = s;
      }
    };
    if (opt.pool) {
      opt.pool->parallel_for(c1 - c0, task);
    } else {
      for (int64_t i = 0; i < c1 - c0; ++i) task(i, 0);
    }
    if (opt.progress && first_error.ok()) opt.progress(std::min<uint64_t>(size, (uint64_t)c1 * kReadChunk), size);
  }
  if (!first_error.ok()) return first_error;
  std::unique_ptr<MappedFile> f(new MappedFile(path, buf.data(), size));
  f->mode_ = LoadMode::kRead;
  f->buffer_ = std::move(buf);
  return f;
}

MappedFile::~MappedFile() {
  if (mode_ == LoadMode::kMmap && data_ && size_) munmap(const_cast<uint8_t*>(data_), size_);
  // kRead: buffer_ frees itself (munmap also drops any mlock).
}

void MappedFile::prefetch(size_t offset, size_t len) const {
  if (mode_ != LoadMode::kMmap || !data_ || offset >= size_) return;
  const size_t page = 4096;
  const size_t begin = offset & ~(page - 1);
  const size_t end = std::min(size_, offset + len);
  madvise(const_cast<uint8_t*>(data_) + begin, end - begin, MADV_WILLNEED);
}

}  // namespace frugal
