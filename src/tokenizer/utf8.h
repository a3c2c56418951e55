// UTF-8 helpers for the tokenizer: llama.cpp's lenient decoding (what the pre-tokenizer sees), strict
// validation with U+FFFD replacement (what the streaming detokenizer emits), and GPT-2's byte-to-unicode
// map used by byte-level BPE vocabularies (reference §4.3.3).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace frugal::utf8 {

inline constexpr uint32_t kReplacement = 0xFFFD;

// Byte length of a sequence from its lead byte, by the high nibble only (1 for ASCII and for stray
// continuation bytes 0x80-0xBF, 2 for 0xC0-0xDF, 3 for 0xE0-0xEF, 4 for 0xF0-0xFF); llama.cpp's rule.
size_t lead_length(uint8_t lead);

// Appends the UTF-8 encoding of `cpt` (any value <= 0x10FFFF, surrogates included; larger -> U+FFFD).
void append(std::string& out, uint32_t cpt);

// llama.cpp's lenient decoder: structurally valid sequences decode as written (overlong forms and
// surrogates are accepted), values above U+10FFFF become U+FFFD, and each byte that does not start a
// complete sequence becomes one U+FFFD.
std::vector<uint32_t> decode_lenient(std::string_view text);

// True iff `text` is well-formed UTF-8 (no overlong forms, surrogates, or values above U+10FFFF).
bool is_valid(std::string_view text);

// Emits the longest prefix of `pending` made of complete sequences, replacing each maximal ill-formed
// subpart with U+FFFD, and erases it from `pending`. A trailing incomplete-but-so-far-valid sequence stays
// in `pending` unless `final`, in which case it becomes one U+FFFD. The result is always well-formed.
std::string take_complete(std::string& pending, bool final);

// GPT-2 bytes_to_unicode: byte -> UTF-8 of its printable stand-in code point.
const std::array<std::string, 256>& byte_to_unicode();
// Inverse for one code point: the byte it stands for, or -1 if `cpt` is not in the map.
int unicode_to_byte(uint32_t cpt);

}  // namespace frugal::utf8
