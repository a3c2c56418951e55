// HugeBuffer: an anonymous, zero-filled, 2 MiB aligned allocation that asks the kernel for transparent
// huge pages (madvise(MADV_HUGEPAGE)); used for the weights read with --no-mmap and for the KV cache.
// Pages are faulted in lazily (the kernel zero-fills them on first touch), so allocating a large buffer
// costs no start-up time. Plus helpers that report what the kernel granted.
//
// Thread-safety: a HugeBuffer is plain memory; the helpers read /sys and /proc and are safe anywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace frugal {

inline constexpr size_t kHugePageSize = size_t(2) << 20;  // x86-64 transparent huge page

class HugeBuffer {
 public:
  HugeBuffer() = default;
  // `bytes` zero-filled bytes starting at a kHugePageSize-aligned address (bytes == 0: empty, no mapping).
  // Errors: out_of_range naming `what` and the size when the kernel refuses the memory (ENOMEM).
  static StatusOr<HugeBuffer> allocate(size_t bytes, const std::string& what);
  ~HugeBuffer();
  HugeBuffer(HugeBuffer&& o) noexcept;
  HugeBuffer& operator=(HugeBuffer&& o) noexcept;
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Whether madvise(MADV_HUGEPAGE) was accepted (false where THP is compiled out or the range is < 2 MiB).
  bool huge_advised() const { return huge_advised_; }

 private:
  void release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;  // the whole mapping (larger than size_ by the alignment slack)
  size_t map_size_ = 0;
  bool huge_advised_ = false;
};

// /sys/kernel/mm/transparent_hugepage/enabled's selected mode: "always", "madvise", "never", or
// "unavailable" when the file cannot be read.
std::string thp_mode();
// AnonHugePages of this process from /proc/self/smaps_rollup, in bytes (0 when unreadable).
uint64_t anon_huge_pages_bytes();

// Memory this process can still take without pushing anything out, in bytes: MemAvailable of
// /proc/meminfo, lowered to the cgroup v2 limit's headroom (memory.max - memory.current) when this process
// runs under a finite limit (a container). 0 when /proc/meminfo cannot be read.
uint64_t memory_available_bytes();

// mlock(p, n). Ok, or an io_error naming `what`, the size, errno's text and RLIMIT_MEMLOCK (callers
// treat it as a warning: a refused lock never stops a load).
Status lock_memory(const void* p, size_t n, const std::string& what);

}  // namespace frugal
