#include "tokenizer/bpe.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace frugal {

int32_t BpeModel::find_symbol(std::string_view text) const {
  const int32_t id = text_to_id_->find(text);
  if (id != StringIdMap::kAbsent && id < n_vocab_) return id;
  return extra_ids_.find(text);
}

int32_t BpeModel::symbol_id(std::string_view text, bool add) {
  int32_t id = find_symbol(text);
  if (id >= 0 || !add) return id;
  extra_text_.emplace_back(text);
  id = n_vocab_ + static_cast<int32_t>(extra_text_.size() - 1);
  extra_ids_.insert(extra_text_.back(), id);
  return id;
}

std::unique_ptr<BpeModel> BpeModel::build(const StringIdMap& text_to_id,
                                          int32_t n_vocab, const std::vector<std::string_view>& merges) {
  std::unique_ptr<BpeModel> m(new BpeModel());
  m->text_to_id_ = &text_to_id;
  m->n_vocab_ = n_vocab;
  m->rules_.reserve(merges.size() + merges.size() / 4);
  std::string joined;
  for (size_t r = 0; r < merges.size(); ++r) {
    const std::string_view w = merges[r];
    const size_t sep = w.find(' ', 1);
    if (sep == std::string_view::npos) continue;
    const std::string_view a = w.substr(0, sep), b = w.substr(sep + 1);
    const int32_t ia = m->symbol_id(a, true);
    const int32_t ib = m->symbol_id(b, true);
    joined.assign(a);
    joined.append(b);
    const int32_t ir = m->symbol_id(joined, true);
    m->rules_.insert(key(ia, ib), Rule{static_cast<int32_t>(r), ir});
  }
  const auto& stand_in = utf8::byte_to_unicode();
  for (int b = 0; b < 256; ++b) m->byte_symbol_[b] = m->symbol_id(stand_in[b], true);
  return m;
}

namespace {

// Min-heap order: lower rank first, then leftmost.
struct PairAfter {
  template <typename P>
  bool operator()(const P& x, const P& y) const {
    return x.rank > y.rank || (x.rank == y.rank && x.left > y.left);
  }
};

}  // namespace

void BpeModel::encode(std::string_view piece, bool ignore_merges, Scratch& scratch,
                      std::vector<int32_t>& out) const {
  const int32_t n = static_cast<int32_t>(piece.size());
  if (n == 0) return;
  if (ignore_merges) {
    scratch.word.clear();
    const auto& stand_in = utf8::byte_to_unicode();
    for (char c : piece) scratch.word += stand_in[static_cast<uint8_t>(c)];
    const int32_t id = text_to_id_->find(scratch.word);
    if (id != StringIdMap::kAbsent) {
      out.push_back(id);
      return;
    }
  }
  auto& syms = scratch.syms;
  auto& heap = scratch.heap;
  syms.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i) {
    syms[i] = {byte_symbol_[static_cast<uint8_t>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Rule* rule = rules_.find(key(syms[left].id, syms[right].id));
    if (rule == nullptr) return;
    heap.push_back({rule->rank, left, right, syms[left].id, syms[right].id, rule->result});
    std::push_heap(heap.begin(), heap.end(), PairAfter{});
  };
  for (int32_t i = 0; i + 1 < n; ++i) try_add(i, i + 1);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), PairAfter{});
    const Scratch::Pair p = heap.back();
    heap.pop_back();
    Scratch::Sym& l = syms[p.left];
    Scratch::Sym& r = syms[p.right];
    if (l.id != p.left_id || r.id != p.right_id) continue;  // stale: a side was merged or consumed
    l.id = p.result;
    r.id = -1;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = p.left;
    try_add(l.prev, p.left);
    try_add(p.left, l.next);
  }
  for (int32_t i = 0; i != -1; i = syms[i].next) {
    const int32_t id = syms[i].id;
    if (id < n_vocab_) {
      out.push_back(id);
      continue;
    }
    // Not a vocabulary token: llama.cpp looks up each byte of the symbol's text as a one-byte token.
    for (char c : extra_text_[id - n_vocab_]) {
      const int32_t byte_id = text_to_id_->find(std::string_view(&c, 1));
      if (byte_id != StringIdMap::kAbsent) out.push_back(byte_id);
    }
  }
}

}  // namespace frugal
