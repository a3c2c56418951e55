// PreTokenizer: the regex split passes that byte-level BPE runs before merging (reference §4.3.1-4.3.2).
//
// A pre-tokenizer is an ordered list of PCRE2 patterns (UTF + UCP, JIT-compiled once at load). Splitting
// starts from one piece (the whole fragment); each pattern replaces every piece by the sequence
// gap, match, gap, match, ..., gap found by scanning that piece left to right for non-overlapping matches,
// dropping empty gaps. Unmatched text is therefore kept. Each piece is matched on its own: `$` and
// lookaheads do not see past the piece's end.
//
// The patterns reproduce llama.cpp's behaviour (its std::regex patterns and hand-written GPT-2/Llama-3
// matchers), including two details of how llama.cpp evaluates them:
//   * `\s` is the Unicode White_Space set (tab..CR, space, U+0085, U+00A0, U+1680, U+2000-U+200A,
//     U+2028, U+2029, U+202F, U+205F, U+3000), written out as an explicit class;
//   * in patterns llama.cpp runs on its "collapsed" text, ASCII '~' is neither \p{P} nor \p{S}.
// Unicode categories come from PCRE2's tables (Unicode 14 in PCRE2 10.42); llama.cpp's tables may differ
// for code points assigned in later Unicode versions.
//
// Thread-safety: immutable after create(); split() may run concurrently (per-call match data).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace frugal {

// Regex families of llama.cpp's BPE pre-tokenizers.
enum class PreKind {
  kDefault,
  kGpt2,
  kLlama3,
  kQwen2,
  kDeepseekLlm,
  kDeepseekCoder,
  kDeepseekV3,
  kStarcoder,
  kFalcon,
};

// What a `tokenizer.ggml.pre` name selects (llama.cpp's per-name flags).
struct PreTypeInfo {
  const char* name;
  PreKind kind;
  bool clean_spaces;   // HF clean_up_tokenization_spaces on detokenize (reported, not applied)
  bool ignore_merges;  // a piece that is itself a vocabulary token is emitted without merging
  bool add_bos;        // default for add_bos before tokenizer.ggml.add_bos_token
};

// nullptr if `name` is not supported.
const PreTypeInfo* find_pre_type(std::string_view name);
// Comma-separated list of supported names.
std::string supported_pre_type_names();
// The exact PCRE2 patterns of a family, in pass order.
std::vector<std::string> pre_kind_patterns(PreKind kind);

class PreTokenizer {
 public:
  // Compiles `patterns` (UTF-8, PCRE2 syntax). Errors name the pattern and PCRE2's message.
  static StatusOr<std::unique_ptr<PreTokenizer>> create(const std::vector<std::string>& patterns);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Splits well-formed UTF-8 `text` into pieces, returned as (byte offset, byte length), in order and
  // covering `text` exactly. `text` must be well-formed UTF-8 (checked by the caller).
  std::vector<std::pair<uint32_t, uint32_t>> split(std::string_view text) const;

 private:
  struct Compiled;
  PreTokenizer() = default;
  std::vector<Compiled*> passes_;
};

}  // namespace frugal
