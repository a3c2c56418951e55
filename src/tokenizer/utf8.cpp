#include "tokenizer/utf8.h"

namespace frugal::utf8 {

size_t lead_length(uint8_t lead) {
  static constexpr uint8_t kByNibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kByNibble[lead >> 4];
}

void append(std::string& out, uint32_t cpt) {
  if (cpt > 0x10FFFF) cpt = kReplacement;
  if (cpt < 0x80) {
    out.push_back(static_cast<char>(cpt));
  } else if (cpt < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

std::vector<uint32_t> decode_lenient(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  auto cont = [&](size_t k) { return k < n && (s[k] & 0xC0) == 0x80; };
  while (i < n) {
    const uint8_t b = s[i];
    if (b < 0x80) {
      out.push_back(b);
      i += 1;
    } else if ((b & 0xE0) == 0xC0 && cont(i + 1)) {
      out.push_back(((b & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu));
      i += 2;
    } else if ((b & 0xF0) == 0xE0 && cont(i + 1) && cont(i + 2)) {
      out.push_back(((b & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu));
      i += 3;
    } else if ((b & 0xF8) == 0xF0 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      uint32_t c = ((b & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) |
                   (s[i + 3] & 0x3Fu);
      out.push_back(c > 0x10FFFF ? kReplacement : c);
      i += 4;
    } else {
      out.push_back(kReplacement);  // stray continuation, truncated sequence, or 0xF8-0xFF
      i += 1;
    }
  }
  return out;
}

namespace {

// Well-formed UTF-8 per Unicode Table 3-7. For a lead byte returns the sequence length and the allowed
// range of the second byte; length 0 means the byte can never start a sequence.
struct LeadInfo {
  int len;
  uint8_t lo, hi;
};

LeadInfo lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Scans one sequence at s[i..n). Returns the number of bytes that are a valid (possibly incomplete)
// prefix; sets `complete` when the whole sequence is present and valid.
size_t scan_sequence(const uint8_t* s, size_t i, size_t n, bool& complete) {
  complete = false;
  const LeadInfo li = lead_info(s[i]);
  if (li.len == 0) return 0;
  if (li.len == 1) {
    complete = true;
    return 1;
  }
  size_t k = 1;
  for (; k < static_cast<size_t>(li.len); ++k) {
    if (i + k >= n) return k;  // incomplete but valid so far
    const uint8_t c = s[i + k];
    const bool ok = (k == 1) ? (c >= li.lo && c <= li.hi) : ((c & 0xC0) == 0x80);
    if (!ok) return k;
  }
  complete = true;
  return k;
}

void append_replacement(std::string& out) { append(out, kReplacement); }

}  // namespace

bool is_valid(std::string_view text) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    bool complete = false;
    const size_t k = scan_sequence(s, i, n, complete);
    if (!complete) return false;
    i += k;
  }
  return true;
}

std::string take_complete(std::string& pending, bool final) {
  const auto* s = reinterpret_cast<const uint8_t*>(pending.data());
  const size_t n = pending.size();
  std::string out;
  out.reserve(n);
  size_t i = 0;
  while (i < n) {
    bool complete = false;
    const size_t k = scan_sequence(s, i, n, complete);
    if (complete) {
      out.append(pending, i, k);
      i += k;
    } else if (k > 0 && i + k >= n && !final) {
      break;  // valid prefix cut by the end of the buffer: wait for more bytes
    } else {
      append_replacement(out);  // maximal ill-formed subpart (at least one byte)
      i += (k > 0 ? k : 1);
    }
  }
  pending.erase(0, i);
  return out;
}

namespace {

struct ByteMaps {
  std::array<std::string, 256> to_unicode;
  std::array<int16_t, 0x144> from_unicode;  // every stand-in code point is < U+0144
  ByteMaps() {
    from_unicode.fill(-1);
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cpt = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(0x100 + next++);
      append(to_unicode[b], cpt);
      from_unicode[cpt] = static_cast<int16_t>(b);
    }
  }
};

const ByteMaps& byte_maps() {
  static const ByteMaps maps;
  return maps;
}

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() { return byte_maps().to_unicode; }

int unicode_to_byte(uint32_t cpt) {
  const auto& m = byte_maps().from_unicode;
  return cpt < m.size() ? m[cpt] : -1;
}

}  // namespace frugal::utf8
