// Tokenizer: encoding (special-token split, SPM, byte-level BPE) and decoding.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"

namespace frugal {

std::vector<Tokenizer::Fragment> Tokenizer::split_special(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags{{0, text.size(), kNoToken}};
  std::vector<Fragment> next;
  for (int32_t id : special_tokens_) {
    if (!parse_special && (attrs_[id] & (kAttrControl | kAttrUnknown))) continue;  // USER_DEFINED always
    const std::string_view tt = tokens_[id];
    next.clear();
    bool changed = false;
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      const size_t end = f.offset + f.length;
      const std::string_view window = text.substr(0, end);
      size_t pos = f.offset;
      for (size_t m = window.find(tt, pos); m != std::string_view::npos; m = window.find(tt, pos)) {
        if (m > pos) next.push_back({pos, m - pos, kNoToken});
        next.push_back({m, tt.size(), id});
        pos = m + tt.size();
        changed = true;
      }
      if (pos < end) next.push_back({pos, end - pos, kNoToken});
    }
    if (changed) frags.swap(next);
  }
  return frags;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && add_bos_) out.push_back(bos_);
  if (!text.empty()) {
    const std::vector<Fragment> frags = split_special(text, parse_special);
    bool prev_special = true;  // SPM: the first fragment and every fragment after a special token get the prefix
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      const std::string_view frag = text.substr(f.offset, f.length);
      if (is_spm_) {
        encode_spm(frag, add_space_prefix_ && prev_special, out);
      } else {
        encode_bpe(frag, out);
      }
      prev_special = false;
    }
  }
  if (add_special && add_eos_) out.push_back(eos_);
  return out;
}

void Tokenizer::encode_bpe(std::string_view fragment, std::vector<int32_t>& out) const {
  // llama.cpp runs the pre-tokenizer on code points and re-encodes them: each byte that does not start a
  // complete sequence becomes U+FFFD, overlong forms are normalized. PCRE2 needs well-formed UTF-8, so
  // surrogates (kept by llama.cpp) are matched as U+E000, another code point of category "other" with the
  // same encoded length; the pieces are then cut from the re-encoded text.
  std::string normalized, matched;
  std::string_view src = fragment, match_src = fragment;
  if (!utf8::is_valid(fragment)) {
    for (uint32_t cpt : utf8::decode_lenient(fragment)) {
      utf8::append(normalized, cpt);
      utf8::append(matched, (cpt >= 0xD800 && cpt <= 0xDFFF) ? 0xE000 : cpt);
    }
    src = normalized;
    match_src = matched;
  }
  BpeModel::Scratch scratch;
  for (const auto& [off, len] : pretokenizer_->split(match_src)) {
    bpe_->encode(src.substr(off, len), ignore_merges_, scratch, out);
  }
}

int32_t Tokenizer::spm_byte_token(uint8_t byte) const {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", byte);
  int32_t id = token_id(buf);
  if (id == kNoToken) id = token_id(std::string_view(reinterpret_cast<const char*>(&byte), 1));
  return id == kNoToken ? unk_ : id;
}

// SentencePiece-style encoding, as llama.cpp's llm_tokenizer_spm: start from UTF-8 characters, repeatedly
// merge the adjacent pair whose concatenation is the highest-scoring vocabulary token (leftmost on ties),
// then emit each symbol as its token or, failing that, as byte tokens. (llama.cpp's rev_merge fallback
// never fires: a symbol is only ever merged into a vocabulary string.)
void Tokenizer::encode_spm(std::string_view fragment, bool prefix_space, std::vector<int32_t>& out) const {
  std::string text;
  text.reserve(fragment.size() * 2 + 3);
  if (prefix_space) text += "\xE2\x96\x81";
  for (char c : fragment) {
    if (c == ' ') {
      text += "\xE2\x96\x81";
    } else {
      text += c;
    }
  }
  struct Sym {
    int32_t start, n, prev, next;
  };
  std::vector<Sym> syms;
  for (size_t off = 0; off < text.size();) {
    const size_t len = std::min(utf8::lead_length(static_cast<uint8_t>(text[off])), text.size() - off);
    const int32_t idx = static_cast<int32_t>(syms.size());
    syms.push_back({static_cast<int32_t>(off), static_cast<int32_t>(len), idx - 1,
                    off + len == text.size() ? -1 : idx + 1});
    off += len;
  }
  struct Bigram {
    float score;
    int32_t left, right, size;
  };
  auto after = [](const Bigram& x, const Bigram& y) {  // max-heap on score, then leftmost
    return x.score < y.score || (x.score == y.score && x.left > y.left);
  };
  std::vector<Bigram> heap;
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const int32_t size = syms[left].n + syms[right].n;
    const int32_t id = token_id(std::string_view(text).substr(syms[left].start, size));
    if (id == kNoToken) return;
    heap.push_back({scores_[id], left, right, size});
    std::push_heap(heap.begin(), heap.end(), after);
  };
  for (int32_t i = 1; i < static_cast<int32_t>(syms.size()); ++i) try_add(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), after);
    const Bigram b = heap.back();
    heap.pop_back();
    Sym& l = syms[b.left];
    Sym& r = syms[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int32_t i = syms.empty() ? -1 : 0; i != -1; i = syms[i].next) {
    const std::string_view s = std::string_view(text).substr(syms[i].start, syms[i].n);
    const int32_t id = token_id(s);
    if (id != kNoToken) {
      out.push_back(id);
    } else {
      for (char c : s) out.push_back(spm_byte_token(static_cast<uint8_t>(c)));
    }
  }
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  FRUGAL_CHECK(id >= 0 && id < n_vocab());
  if (!render_special && (attrs_[id] & (kAttrControl | kAttrUnknown))) return std::string();
  return pieces_[id];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special, bool continuation) const {
  std::string out;
  const size_t strip_index = (!ids.empty() && ids[0] == bos_) ? 1 : 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    FRUGAL_CHECK(ids[i] >= 0 && ids[i] < n_vocab());
    if (!render_special && (attrs_[ids[i]] & (kAttrControl | kAttrUnknown))) continue;
    const std::string& p = pieces_[ids[i]];
    const bool strip = add_space_prefix_ && !continuation && i == strip_index && !p.empty() && p[0] == ' ';
    out.append(p, strip ? 1 : 0, std::string::npos);
  }
  return out;
}

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tok, bool render_special, bool continuation)
    : tok_(tok), render_special_(render_special), continuation_(continuation) {}

std::string StreamingDetokenizer::push(int32_t id) {
  if (n_pushed_ == 0 && id == tok_.bos()) strip_index_ = 1;
  std::string piece = tok_.token_to_piece(id, render_special_);
  if (tok_.add_space_prefix() && !continuation_ && n_pushed_ == strip_index_ && !piece.empty() && piece[0] == ' ') {
    piece.erase(0, 1);
  }
  ++n_pushed_;
  pending_ += piece;
  return utf8::take_complete(pending_, /*final=*/false);
}

std::string StreamingDetokenizer::flush() {
  std::string out = utf8::take_complete(pending_, /*final=*/true);
  n_pushed_ = 0;
  strip_index_ = 0;
  return out;
}

}  // namespace frugal
