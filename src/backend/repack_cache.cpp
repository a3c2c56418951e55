#include "backend/repack_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "backend/matmul.h"
#include "backend/quant.h"
#include "tensor/dtype.h"

namespace frugal {

namespace {

constexpr char kMagic[8] = {'F', 'R', 'U', 'G', 'A', 'L', 'R', 'P'};
constexpr uint32_t kVersion = 1;
constexpr size_t kIsaBytes = 16;
constexpr size_t kHeaderBytes = 8 + 4 + 4 + kIsaBytes + 8 + 8;
constexpr size_t kEntryBytes = 8 + 4 + 4 + 8 + 8 + 8 + 8 + 8;
constexpr uint64_t kAlign = 4096;
constexpr uint64_t kMaxEntries = 1u << 20;

struct Entry {
  uint64_t offset;
  uint32_t type;
  int64_t K, N;
  uint64_t row_bytes, bytes, file_off;
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

Status pread_all(int fd, uint8_t* dst, size_t n, uint64_t off, const std::string& path) {
  while (n > 0) {
    const ssize_t got = ::pread(fd, dst, n, (off_t)off);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return io_error(path + ": read error: " + std::strerror(errno));
    if (got == 0) return corrupt(path + ": truncated (ends at byte " + std::to_string(off) + ")");
    dst += got;
    n -= (size_t)got;
    off += (uint64_t)got;
  }
  return Status::Ok();
}

Status write_all(int fd, const uint8_t* src, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t put = ::write(fd, src, n);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) return io_error(path + ": write error: " + std::strerror(errno));
    src += put;
    n -= (size_t)put;
  }
  return Status::Ok();
}

template <class T>
void put(std::vector<uint8_t>& b, T v) {
  const size_t at = b.size();
  b.resize(at + sizeof(T));
  std::memcpy(b.data() + at, &v, sizeof(T));
}

template <class T>
T get(const uint8_t*& p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  p += sizeof(T);
  return v;
}

std::string isa_field(Isa isa) {
  std::string s(isa_name(isa));
  s.resize(kIsaBytes, '\0');
  return s;
}

// The checks of one entry against the weights and the ISA's kernels; empty when it may be read.
std::string entry_problem(const Entry& e, Isa isa, const RepackCacheSpec& spec, uint64_t file_size) {
  const DTypeInfo* info = dtype_info(e.type);
  if (info == nullptr) return "unknown tensor type " + std::to_string(e.type);
  const QuantTraits* t = quant_traits((DType)e.type, isa);
  if (t == nullptr || t->repack == nullptr || t->repack_group_bytes == nullptr)
    return std::string(info->name) + " has no repacked kernel on " + isa_name(isa);
  if (e.K <= 0 || e.N <= 0 || e.K % info->block_size != 0) return "bad shape";
  if (e.row_bytes != (uint64_t)dtype_row_bytes((DType)e.type, e.K)) return "row bytes do not match the type";
  const uint64_t groups = ((uint64_t)e.N + kRepackRows - 1) / kRepackRows;
  if (e.bytes != groups * t->repack_group_bytes(e.K)) return "copy size does not match the repacked layout";
  if (e.row_bytes != 0 && (uint64_t)e.N > (spec.size - std::min<uint64_t>(e.offset, spec.size)) / e.row_bytes)
    return "weight outside the model's tensor data";
  if (e.file_off % kAlign != 0 || e.file_off > file_size || e.bytes > file_size - e.file_off)
    return "copy outside the file";
  return {};
}

// Whether the first and last 16-row groups of `copy` are what repacking the weight gives now.
bool groups_match(const QuantTraits& t, const WeightView& w, const uint8_t* copy) {
  const size_t gb = t.repack_group_bytes(w.K);
  const int64_t last = (w.N + kRepackRows - 1) / kRepackRows - 1;
  std::vector<uint8_t> fresh(gb + 64);
  uint8_t* f = fresh.data() + (64 - (uintptr_t)fresh.data() % 64) % 64;  // the kernels' 64-byte alignment
  for (int64_t g : {int64_t(0), last}) {
    t.repack(w.K, w.data, w.row_bytes, w.N, g, g + 1, f);
    if (std::memcmp(f, copy + (size_t)g * gb, gb) != 0) return false;
  }
  return true;
}

}  // namespace

uint64_t repack_model_id(uint64_t file_size, int64_t mtime_ns, const uint8_t* header, size_t header_bytes) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  mix(&file_size, 8);
  mix(&mtime_ns, 8);
  mix(header, header_bytes);
  return h;
}

StatusOr<RepackCacheLoad> load_repack_cache(MatmulScratch& scratch, Isa isa, const RepackCacheSpec& spec) {
  const std::string& path = spec.path;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return RepackCacheLoad{};
    return io_error(path + ": cannot open: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error(path + ": cannot stat: " + std::strerror(errno));
  const uint64_t file_size = (uint64_t)st.st_size;
  uint8_t head[kHeaderBytes];
  if (file_size < kHeaderBytes) return corrupt(path + ": not a frugal repack cache (too short)");
  FRUGAL_RETURN_IF_ERROR(pread_all(fd.get(), head, kHeaderBytes, 0, path));
  if (std::memcmp(head, kMagic, 8) != 0) return corrupt(path + ": not a frugal repack cache (bad magic)");
  const uint8_t* p = head + 8;
  const uint32_t version = get<uint32_t>(p);
  get<uint32_t>(p);
  const std::string isa_in_file(reinterpret_cast<const char*>(p), kIsaBytes);
  p += kIsaBytes;
  const uint64_t model_id = get<uint64_t>(p);
  const uint64_t n = get<uint64_t>(p);
  if (version != kVersion)
    return unsupported(path + ": repack cache version " + std::to_string(version) + ", this build writes " +
                       std::to_string(kVersion));
  if (isa_in_file != isa_field(isa))
    return unsupported(path + ": repack cache for the " + std::string(isa_in_file.c_str()) + " kernels, this run uses " +
                       isa_name(isa));
  if (model_id != spec.model_id) return unsupported(path + ": repack cache of another model file (or the model changed)");
  if (n > kMaxEntries || kHeaderBytes + n * kEntryBytes > file_size)
    return corrupt(path + ": entry table (" + std::to_string(n) + " entries) runs past the end of the file");
  std::vector<uint8_t> table((size_t)n * kEntryBytes);
  FRUGAL_RETURN_IF_ERROR(pread_all(fd.get(), table.data(), table.size(), kHeaderBytes, path));
  std::vector<Entry> entries((size_t)n);
  p = table.data();
  for (Entry& e : entries) {
    e.offset = get<uint64_t>(p);
    e.type = get<uint32_t>(p);
    get<uint32_t>(p);
    e.K = get<int64_t>(p);
    e.N = get<int64_t>(p);
    e.row_bytes = get<uint64_t>(p);
    e.bytes = get<uint64_t>(p);
    e.file_off = get<uint64_t>(p);
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string problem = entry_problem(entries[i], isa, spec, file_size);
    if (!problem.empty()) return corrupt(path + ": entry " + std::to_string(i) + ": " + problem);
  }
  RepackCacheLoad r;
  for (const Entry& e : entries) {
    const WeightView w{(DType)e.type, e.K, e.N, spec.base + e.offset, (size_t)e.row_bytes};
    uint8_t* dst = scratch.adopt_repacked(w, (size_t)e.bytes);
    if (dst == nullptr) break;  // over --repack-mem: the rest are built on demand (or not at all)
    FRUGAL_RETURN_IF_ERROR(pread_all(fd.get(), dst, (size_t)e.bytes, e.file_off, path));
    if (!groups_match(*quant_traits((DType)e.type, isa), w, dst)) {
      scratch.drop_repacked(w.data);
      ++r.rejected;
      continue;
    }
    ++r.adopted;
    r.bytes += (size_t)e.bytes;
  }
  return r;
}

StatusOr<int> save_repack_cache(const MatmulScratch& scratch, Isa isa, const RepackCacheSpec& spec) {
  std::vector<Entry> entries;
  std::vector<const uint8_t*> data;
  uint64_t off = (kHeaderBytes + kEntryBytes * scratch.repacked_copies().size() + kAlign - 1) / kAlign * kAlign;
  for (const MatmulScratch::RepackedCopy& c : scratch.repacked_copies()) {
    if (c.weight < spec.base || c.weight >= spec.base + spec.size) continue;  // not a weight of this model
    entries.push_back(Entry{(uint64_t)(c.weight - spec.base), (uint32_t)c.type, c.K, c.N, c.row_bytes, c.bytes, off});
    data.push_back(c.data);
    off = (off + c.bytes + kAlign - 1) / kAlign * kAlign;
  }
  std::vector<uint8_t> head;
  head.insert(head.end(), kMagic, kMagic + 8);
  put<uint32_t>(head, kVersion);
  put<uint32_t>(head, 0);
  const std::string isa_s = isa_field(isa);
  head.insert(head.end(), isa_s.begin(), isa_s.end());
  put<uint64_t>(head, spec.model_id);
  put<uint64_t>(head, entries.size());
  for (const Entry& e : entries) {
    put<uint64_t>(head, e.offset);
    put<uint32_t>(head, e.type);
    put<uint32_t>(head, 0);
    put<int64_t>(head, e.K);
    put<int64_t>(head, e.N);
    put<uint64_t>(head, e.row_bytes);
    put<uint64_t>(head, e.bytes);
    put<uint64_t>(head, e.file_off);
  }
  const std::string tmp = spec.path + ".tmp." + std::to_string(::getpid());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return io_error(tmp + ": cannot create: " + std::strerror(errno));
  auto fail = [&](Status s) {
    ::close(fd.release());
    std::remove(tmp.c_str());
    return s;
  };
  Status s = write_all(fd.get(), head.data(), head.size(), tmp);
  uint64_t at = head.size();
  const std::vector<uint8_t> zeros(kAlign, 0);
  for (size_t i = 0; i < entries.size() && s.ok(); ++i) {
    s = write_all(fd.get(), zeros.data(), (size_t)(entries[i].file_off - at), tmp);
    if (s.ok()) s = write_all(fd.get(), data[i], (size_t)entries[i].bytes, tmp);
    at = entries[i].file_off + entries[i].bytes;
  }
  if (!s.ok()) return fail(s);
  if (::close(fd.release()) != 0) return fail(io_error(tmp + ": close failed: " + std::strerror(errno)));
  if (std::rename(tmp.c_str(), spec.path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    return io_error(spec.path + ": cannot rename the new cache into place: " + why);
  }
  return (int)entries.size();
}

}  // namespace frugal
