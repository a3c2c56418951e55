#include "backend/matmul.h"

#include <algorithm>
#include <cstdlib>
#include <unordered_map>
#include <vector>

#include "backend/quant.h"
#include "base/check.h"
#include "base/huge_pages.h"
#include "base/thread_pool.h"

namespace frugal {

namespace {

constexpr int64_t kRowAlign = 16;              // thread row ranges start on multiples of this
constexpr int64_t kMinParallelConvert = 16384;  // elements below which conversion stays on one thread
// Repacked weights from this many tokens on (built at the first such call). Decode (T = 1) keeps the
// row walk over the raw rows: it is memory-bound and measured no faster repacked.
constexpr int64_t kRepackMinT = 2;

const QuantTraits& traits_or_die(DType type, Isa isa) {
  const QuantTraits* t = quant_traits(type, isa);
  FRUGAL_CHECK_MSG(t != nullptr && t->vec_dot != nullptr, "matmul: weight type has no dot product");
  return *t;
}

// Rows [begin, end) of part p out of `parts` (all but the last aligned to kRowAlign).
void part_rows(int64_t N, int64_t p, int64_t parts, int64_t* begin, int64_t* end) {
  auto edge = [&](int64_t q) {
    if (q >= parts) return N;
    return std::min(N, (N * q / parts) / kRowAlign * kRowAlign);
  };
  *begin = edge(p);
  *end = edge(p + 1);
}

// Rows [r0, r1) for tokens [0, T) with the repacked gemm (wp: w repacked), the traits' gemm, or vec_dot
// per pair.
void compute_rows(const QuantTraits& t, const WeightView& w, const uint8_t* wp, const uint8_t* xa,
                  size_t x_row_bytes, int64_t T, int64_t r0, int64_t r1, float* y) {
  if (r0 >= r1) return;
  if (wp != nullptr) {
    t.gemm_repacked(w.K, wp, r0, r1, xa, x_row_bytes, T, y, w.N);
    return;
  }
  if (t.gemm != nullptr) {
    t.gemm(w.K, w.data, w.row_bytes, r0, r1, xa, x_row_bytes, T, y, w.N);
    return;
  }
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t tok = 0; tok < T; ++tok) t.vec_dot(w.K, &y[tok * w.N + r], w.row(r), xa + tok * x_row_bytes);
}

}  // namespace

void MatmulScratch::Free::operator()(uint8_t* p) const { std::free(p); }

// The repacked copies live in 2 MiB-aligned MADV_HUGEPAGE memory (base/huge_pages.h): 64 MiB chunks
// filled in order, a copy larger than half a chunk in its own buffer. A copy is only released with the
// scratch (one dropped for a recycled address stays until then; only the pages it touched cost memory).
// Huge pages matter at start-up: the first batched call builds every copy, and faulting ~0.6 GB of
// fresh 4 KiB pages took longer than the repacking itself (1.1B Q4_0: about 0.5 s of a 2-token prompt).
struct MatmulScratch::Cache {
  struct Entry {
    DType type;
    int64_t K, N;
    size_t row_bytes, bytes;
    uint64_t fingerprint;
    uint8_t* data;
  };
  std::unordered_map<const void*, Entry> map;
  std::vector<HugeBuffer> buffers;  // the chunks and the large copies
  uint8_t* chunk = nullptr;         // the chunk being filled
  size_t chunk_left = 0;
  std::vector<std::unique_ptr<uint8_t, Free>> heap;  // AddressSanitizer builds: one malloc'd block per copy

  static constexpr size_t kChunk = size_t(64) << 20;
  // `bytes` (a multiple of 64) of fresh memory; nullptr when the kernel refuses it.
  uint8_t* allocate(size_t bytes) {
#if defined(__SANITIZE_ADDRESS__)
    // Separate heap blocks, so an out-of-bounds read or write of a repack kernel is reported.
    heap.emplace_back(static_cast<uint8_t*>(std::aligned_alloc(64, std::max<size_t>(bytes, 64))));
    return heap.back().get();
#endif
    if (bytes > kChunk / 2) {
      StatusOr<HugeBuffer> b = HugeBuffer::allocate(bytes, "repacked weights");
      if (!b.ok()) return nullptr;
      buffers.push_back(std::move(*b));
      return buffers.back().data();
    }
    if (bytes > chunk_left) {
      StatusOr<HugeBuffer> b = HugeBuffer::allocate(kChunk, "repacked weights");
      if (!b.ok()) return nullptr;
      buffers.push_back(std::move(*b));
      chunk = buffers.back().data();
      chunk_left = kChunk;
    }
    uint8_t* p = chunk;
    chunk += bytes;
    chunk_left -= bytes;
    return p;
  }
};

MatmulScratch::MatmulScratch() = default;
MatmulScratch::~MatmulScratch() = default;

namespace {

// FNV-1a over 16 samples of 16 bytes spread over the matrix (recognizes a different weight that was
// given a recycled address).
uint64_t fingerprint(const WeightView& w) {
  const size_t total = (size_t)w.N * w.row_bytes;
  const auto* p = static_cast<const uint8_t*>(w.data);
  uint64_t h = 1469598103934665603ull;
  for (int s = 0; s < 16; ++s) {
    const size_t len = std::min<size_t>(16, total);
    const size_t at = total <= 16 ? 0 : (total - 16) / 15 * (size_t)s;
    for (size_t i = 0; i < len; ++i) h = (h ^ p[at + i]) * 1099511628211ull;
  }
  return h;
}

}  // namespace

const uint8_t* MatmulScratch::repacked(const QuantTraits& t, const WeightView& w, ThreadPool* pool) {
  if (!repack_on_ || t.repack == nullptr || w.N <= 0) return nullptr;
  if (!cache_) cache_ = std::make_unique<Cache>();
  const uint64_t fp = fingerprint(w);
  auto it = cache_->map.find(w.data);
  if (it != cache_->map.end()) {
    const Cache::Entry& e = it->second;
    if (e.type == w.type && e.K == w.K && e.N == w.N && e.row_bytes == w.row_bytes && e.fingerprint == fp)
      return e.data;
    repacked_bytes_ -= e.bytes;
    cache_->map.erase(it);
  }
  const int64_t groups = (w.N + kRepackRows - 1) / kRepackRows;
  const size_t gb = t.repack_group_bytes(w.K);
  FRUGAL_CHECK(gb % 64 == 0);
  const size_t bytes = (size_t)groups * gb;
  if (repacked_bytes_ + bytes > repack_limit_) return nullptr;
  uint8_t* p = cache_->allocate(bytes);
  if (p == nullptr) return nullptr;  // no memory for a copy: the raw-row path gives the same bits
  auto build = [&](int64_t g0, int64_t g1) { t.repack(w.K, w.data, w.row_bytes, w.N, g0, g1, p + (size_t)g0 * gb); };
  if (pool != nullptr && pool->n_threads() > 1 && groups > 1) {
    pool->parallel_range(groups, [&](int64_t g0, int64_t g1, int) { build(g0, g1); });
  } else {
    build(0, groups);
  }
  repacked_bytes_ += bytes;
  cache_->map.insert_or_assign(w.data, Cache::Entry{w.type, w.K, w.N, w.row_bytes, bytes, fp, p});
  return p;
}

uint8_t* MatmulScratch::activations(size_t bytes) {
  if (bytes > capacity_) {
    const size_t cap = (std::max(bytes, capacity_ + capacity_ / 2) + 63) / 64 * 64;
    uint8_t* p = static_cast<uint8_t*>(std::aligned_alloc(64, cap));
    FRUGAL_CHECK_MSG(p != nullptr, "MatmulScratch: out of memory");
    buf_.reset(p);
    capacity_ = cap;
  }
  return buf_.get();
}

void matmul_ref(const WeightView& w, const float* x, int64_t T, float* y) {
  const QuantTraits& t = traits_or_die(w.type, Isa::kScalar);
  const QuantTraits* vt = quant_traits(t.vec_dot_type, Isa::kScalar);
  FRUGAL_CHECK(vt != nullptr && vt->from_float != nullptr);
  std::vector<uint8_t> xq(dtype_row_bytes(t.vec_dot_type, w.K));
  for (int64_t tok = 0; tok < T; ++tok) {
    vt->from_float(x + tok * w.K, xq.data(), w.K);
    for (int64_t r = 0; r < w.N; ++r) t.vec_dot(w.K, &y[tok * w.N + r], w.row(r), xq.data());
  }
}

void matmul_cpu(ThreadPool* pool, Isa isa, const WeightView& w, const float* x, int64_t T, float* y,
                MatmulScratch& scratch) {
  if (T <= 0 || w.N <= 0) return;
  const QuantTraits& t = traits_or_die(w.type, isa);
  const int n_threads = pool != nullptr ? pool->n_threads() : 1;
  FRUGAL_CHECK(w.K % dtype_block_size(w.type) == 0);

  // 1. Activations in vec_dot_type.
  const uint8_t* xa = reinterpret_cast<const uint8_t*>(x);
  size_t x_row_bytes = (size_t)w.K * sizeof(float);
  if (t.vec_dot_type != DType::F32) {
    const QuantTraits* vt = quant_traits(t.vec_dot_type, isa);
    FRUGAL_CHECK(vt != nullptr && vt->from_float != nullptr);
    x_row_bytes = dtype_row_bytes(t.vec_dot_type, w.K);
    uint8_t* buf = scratch.activations((size_t)T * x_row_bytes);
    const int64_t bs = dtype_block_size(t.vec_dot_type), bb = dtype_block_bytes(t.vec_dot_type);
    const int64_t blocks_per_row = w.K / bs, total = T * blocks_per_row;
    auto convert = [&](int64_t b0, int64_t b1) {  // blocks [b0, b1) of the flattened [T, K/bs] grid
      while (b0 < b1) {
        const int64_t row = b0 / blocks_per_row, col = b0 % blocks_per_row;
        const int64_t n = std::min(b1 - b0, blocks_per_row - col);
        vt->from_float(x + row * w.K + col * bs, buf + row * x_row_bytes + col * bb, n * bs);
        b0 += n;
      }
    };
    if (n_threads > 1 && T * w.K >= kMinParallelConvert) {
      pool->parallel_range(total, [&](int64_t b0, int64_t b1, int) { convert(b0, b1); });
    } else {
      convert(0, total);
    }
    xa = buf;
  }

  // 2. One contiguous range of weight rows per thread.
  const uint8_t* wp = T >= std::max(kRepackMinT, t.repack_min_T) ? scratch.repacked(t, w, pool) : nullptr;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(n_threads, w.N / kRowAlign));
  if (parts == 1) {
    compute_rows(t, w, wp, xa, x_row_bytes, T, 0, w.N, y);
    return;
  }
  pool->parallel_for(parts, [&](int64_t p, int) {
    int64_t r0, r1;
    part_rows(w.N, p, parts, &r0, &r1);
    compute_rows(t, w, wp, xa, x_row_bytes, T, r0, r1, y);
  });
}

void matmul_cpu_multi(ThreadPool* pool, Isa isa, const Backend::MatmulJob* jobs, int64_t n, MatmulScratch& scratch) {
  const int n_threads = pool != nullptr ? pool->n_threads() : 1;
  if (n_threads == 1 || n == 1) {
    for (int64_t i = 0; i < n; ++i) matmul_cpu(pool, isa, jobs[i].w, jobs[i].x, jobs[i].T, jobs[i].y, scratch);
    return;
  }
  // 1. Activations of every job, back to back in the scratch buffer (64-byte aligned starts). Jobs with
  //    the same x, T, K and vec_dot_type (a MoE expert's gate and up, every expert of a decode token)
  //    share one conversion: the converted rows depend only on those.
  struct Prepared {
    const QuantTraits* t;
    const uint8_t* xa;
    size_t x_row_bytes;
    const uint8_t* wp;  // repacked weight or nullptr
    int64_t source;     // job whose conversion this job reuses (itself when it converts)
  };
  std::vector<Prepared> prep((size_t)n);
  std::vector<size_t> offset((size_t)n);
  std::vector<int64_t> converts;  // jobs that convert
  size_t total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Backend::MatmulJob& j = jobs[i];
    const QuantTraits& t = traits_or_die(j.w.type, isa);
    FRUGAL_CHECK(j.w.K % dtype_block_size(j.w.type) == 0);
    prep[(size_t)i] = {&t, reinterpret_cast<const uint8_t*>(j.x), (size_t)j.w.K * sizeof(float),
                       j.T >= std::max(kRepackMinT, t.repack_min_T) ? scratch.repacked(t, j.w, pool) : nullptr, i};
    offset[(size_t)i] = total;
    if (t.vec_dot_type != DType::F32 && j.T > 0) {
      prep[(size_t)i].x_row_bytes = dtype_row_bytes(t.vec_dot_type, j.w.K);
      for (int64_t c : converts) {
        const Backend::MatmulJob& o = jobs[c];
        if (o.x == j.x && o.T == j.T && o.w.K == j.w.K && prep[(size_t)c].t->vec_dot_type == t.vec_dot_type) {
          prep[(size_t)i].source = c;
          break;
        }
      }
      if (prep[(size_t)i].source != i) continue;
      converts.push_back(i);
      total += ((size_t)j.T * prep[(size_t)i].x_row_bytes + 63) / 64 * 64;
    }
  }
  uint8_t* buf = scratch.activations(std::max<size_t>(total, 64));
  auto convert = [&](int64_t c) {
    const Backend::MatmulJob& j = jobs[c];
    Prepared& p = prep[(size_t)c];
    const QuantTraits* vt = quant_traits(p.t->vec_dot_type, isa);
    FRUGAL_CHECK(vt != nullptr && vt->from_float != nullptr);
    uint8_t* dst = buf + offset[(size_t)c];
    for (int64_t tok = 0; tok < j.T; ++tok) vt->from_float(j.x + tok * j.w.K, dst + tok * p.x_row_bytes, j.w.K);
    p.xa = dst;
  };
  int64_t convert_elems = 0;
  for (int64_t c : converts) convert_elems += jobs[c].T * jobs[c].w.K;
  if (convert_elems < kMinParallelConvert) {
    for (int64_t c : converts) convert(c);  // a decode token: not worth a dispatch
  } else {
    pool->parallel_for((int64_t)converts.size(), [&](int64_t k, int) { convert(converts[(size_t)k]); });
  }
  for (Prepared& p : prep)
    if (p.t->vec_dot_type != DType::F32) p.xa = prep[(size_t)p.source].xa;
  // 2. Row chunks of all jobs, about eight per thread in total work (weight bytes x tokens), so the
  //    dynamic claiming evens out threads that the OS or the memory system slowed down.
  struct Chunk {
    int64_t job, r0, r1;
  };
  double work = 0;
  for (int64_t i = 0; i < n; ++i) work += (double)jobs[i].w.N * (double)jobs[i].w.row_bytes * (double)std::max<int64_t>(jobs[i].T, 1);
  const double per = work / (8.0 * n_threads);
  std::vector<Chunk> chunks;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t N = jobs[i].w.N, T = jobs[i].T;
    if (N <= 0 || T <= 0) continue;
    const int64_t fit = (int64_t)(per / ((double)jobs[i].w.row_bytes * (double)T));
    const int64_t rows = std::max<int64_t>(kRowAlign, fit / kRowAlign * kRowAlign);
    for (int64_t r = 0; r < N; r += rows) chunks.push_back({i, r, std::min(N, r + rows)});
  }
  pool->parallel_for((int64_t)chunks.size(), [&](int64_t c, int) {
    const Chunk& ch = chunks[(size_t)c];
    const Backend::MatmulJob& j = jobs[ch.job];
    const Prepared& p = prep[(size_t)ch.job];
    compute_rows(*p.t, j.w, p.wp, p.xa, p.x_row_bytes, j.T, ch.r0, ch.r1, j.y);
  });
}

void get_rows(const WeightView& w, const int32_t* ids, int64_t T, float* out) {
  const QuantTraits* t = quant_traits(w.type, Isa::kScalar);
  FRUGAL_CHECK_MSG(t != nullptr && t->to_float != nullptr, "get_rows: type cannot be dequantized");
  for (int64_t tok = 0; tok < T; ++tok) {
    FRUGAL_CHECK_MSG(ids[tok] >= 0 && ids[tok] < w.N, "get_rows: row id out of range");
    t->to_float(w.row(ids[tok]), out + tok * w.K, w.K);
  }
}

}  // namespace frugal
