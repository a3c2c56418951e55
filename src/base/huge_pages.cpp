#include "base/huge_pages.h"

#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace frugal {

StatusOr<HugeBuffer> HugeBuffer::allocate(size_t bytes, const std::string& what) {
  HugeBuffer b;
  if (bytes == 0) return b;
  // Over-allocate by one huge page, then trim the unaligned head and tail so the buffer starts on 2 MiB.
  const size_t slack = kHugePageSize;
  if (bytes > SIZE_MAX - 2 * slack) return out_of_range(what + ": " + std::to_string(bytes) + " bytes is too large");
  const size_t rounded = (bytes + kHugePageSize - 1) / kHugePageSize * kHugePageSize;
  const size_t map_size = rounded + slack;
  void* p = mmap(nullptr, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    return out_of_range(what + ": cannot allocate " + std::to_string(bytes) + " bytes: " + std::strerror(err));
  }
  const uintptr_t base = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (base + kHugePageSize - 1) & ~(uintptr_t)(kHugePageSize - 1);
  const size_t head = aligned - base, tail = map_size - head - rounded;
  if (head) munmap(p, head);
  if (tail) munmap(reinterpret_cast<void*>(aligned + rounded), tail);
  b.map_ = reinterpret_cast<void*>(aligned);
  b.map_size_ = rounded;
  b.data_ = reinterpret_cast<uint8_t*>(aligned);
  b.size_ = bytes;
#ifdef MADV_HUGEPAGE
  b.huge_advised_ = madvise(b.map_, b.map_size_, MADV_HUGEPAGE) == 0 && rounded >= kHugePageSize;
#endif
  return b;
}

void HugeBuffer::release() {
  if (map_) munmap(map_, map_size_);
  map_ = nullptr;
  data_ = nullptr;
  size_ = map_size_ = 0;
  huge_advised_ = false;
}

HugeBuffer::~HugeBuffer() { release(); }

HugeBuffer::HugeBuffer(HugeBuffer&& o) noexcept { *this = std::move(o); }

HugeBuffer& HugeBuffer::operator=(HugeBuffer&& o) noexcept {
  if (this != &o) {
    release();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    map_ = std::exchange(o.map_, nullptr);
    map_size_ = std::exchange(o.map_size_, 0);
    huge_advised_ = std::exchange(o.huge_advised_, false);
  }
  return *this;
}

std::string thp_mode() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!in || !std::getline(in, line)) return "unavailable";
  const size_t a = line.find('['), b = line.find(']');
  if (a == std::string::npos || b == std::string::npos || b < a) return "unavailable";
  return line.substr(a + 1, b - a - 1);
}

uint64_t anon_huge_pages_bytes() {
  std::ifstream in("/proc/self/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("AnonHugePages:", 0) != 0) continue;
    std::istringstream ss(line.substr(14));
    uint64_t kb = 0;
    ss >> kb;
    return kb * 1024;
  }
  return 0;
}

namespace {

// The first number of the first line of `path` ("max" and unreadable files: 0).
uint64_t read_first_number(const std::string& path) {
  std::ifstream in(path);
  uint64_t v = 0;
  return (in >> v) ? v : 0;
}

// This process's cgroup v2 directory ("0::/path" in /proc/self/cgroup), or "" when there is none.
std::string cgroup_dir() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return "/sys/fs/cgroup" + line.substr(3);
  return "";
}

}  // namespace

uint64_t memory_available_bytes() {
  uint64_t avail = 0;
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream ss(line.substr(13));
    ss >> avail;
    avail *= 1024;
    break;
  }
  const std::string dir = cgroup_dir();
  if (!dir.empty()) {
    const uint64_t max = read_first_number(dir + "/memory.max");  // "max": no limit -> 0
    const uint64_t cur = read_first_number(dir + "/memory.current");
    if (max > 0) avail = std::min(avail, max > cur ? max - cur : 0);
  }
  return avail;
}

Status lock_memory(const void* p, size_t n, const std::string& what) {
  if (n == 0 || mlock(p, n) == 0) return Status::Ok();
  const int err = errno;
  struct rlimit rl {};
  std::string limit = "unknown";
  if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0)
    limit = rl.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string((unsigned long long)rl.rlim_cur) + " bytes";
  return io_error(what + ": cannot lock " + std::to_string(n) + " bytes in memory (" + std::strerror(err) +
                  "; RLIMIT_MEMLOCK is " + limit + ", raise it with `ulimit -l`)");
}

}  // namespace frugal
