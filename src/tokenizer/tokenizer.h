// Tokenizer: llama.cpp-compatible tokenization for GGUF vocabularies.
//
// Two models, chosen by `tokenizer.ggml.model`:
//   "llama"  SentencePiece-style: merges adjacent symbols by vocabulary score, byte fallback through
//            <0xXX> tokens, optional space prefix (reference §4.4).
//   "gpt2"   byte-level BPE: special-token split, then the pre-tokenizer regex passes selected by
//            `tokenizer.ggml.pre`, GPT-2 byte-to-unicode, merges by rank (reference §4.3).
//
// encode() pipeline (both models):
//   text -> split on special tokens (§4.2; longest token text first) -> raw fragments and token ids
//        -> each raw fragment through the model -> [BOS] ids [EOS] when add_special.
//
// Decoding: token_to_piece() gives the bytes a token contributes (possibly a partial UTF-8 sequence for
// byte-level and byte-fallback tokens); decode() concatenates pieces and, for SPM vocabularies with
// add_space_prefix, removes the one space the encoder prepended (see decode()). decode() never applies
// HF's clean_up_tokenization (clean_spaces() only reports what llama.cpp would do), so that decode() of a
// sequence always equals the concatenated output of a StreamingDetokenizer over it.
//
// Thread-safety: a Tokenizer is immutable after from_gguf(); every const method may be called from any
// number of threads at once. A StreamingDetokenizer is single-threaded state over a Tokenizer that must
// outlive it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/gguf_file.h"
#include "tokenizer/flat_map.h"

namespace frugal {

class PreTokenizer;
class BpeModel;

// Token attributes as bit flags (llama.cpp's llama_token_attr values). Types from the GGUF's
// tokenizer.ggml.token_type map onto one flag each; load-time fixes may add kControl / kUnused.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
};

class Tokenizer {
 public:
  static constexpr int32_t kNoToken = -1;

  // Reads the tokenizer.* keys of `f`. Supported: model "llama" (SPM) and "gpt2" (BPE with the
  // pre-tokenizers listed by supported_pre_types()). Unknown model or pre -> kUnsupported naming the value
  // and the supported ones; malformed arrays -> kCorrupt naming the key. The file may be closed afterwards
  // (everything needed is copied).
  static StatusOr<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& f);
  ~Tokenizer();

  // add_special: prepend BOS / append EOS as add_bos() / add_eos() say.
  // parse_special: text of CONTROL (and UNKNOWN) tokens is matched as that token; USER_DEFINED tokens are
  // always matched. Invalid UTF-8 is tokenized like llama.cpp does (BPE: each bad byte as U+FFFD).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Bytes that token `id` contributes to text (SPM: U+2581 -> ' ', <0xAB> -> byte 0xAB; BPE: byte-level
  // decode). CONTROL/UNKNOWN tokens render as "" unless render_special; tokens typed UNUSED or UNDEFINED
  // render as "".
  // `id` must be in [0, n_vocab()).
  std::string token_to_piece(int32_t id, bool render_special = false) const;

  // Concatenated pieces. If add_space_prefix() (SPM), the first token after an optional leading BOS loses
  // one leading space, undoing the prefix encode() adds; pass continuation = true when `ids` continue
  // earlier text (e.g. generated tokens after a prompt) to keep that space.
  std::string decode(const std::vector<int32_t>& ids, bool render_special = false,
                     bool continuation = false) const;

  int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t bos() const { return bos_; }  // kNoToken if none
  int32_t eos() const { return eos_; }
  int32_t eot() const { return eot_; }
  int32_t unk() const { return unk_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  bool clean_spaces() const { return clean_spaces_; }  // llama.cpp's flag; never applied here
  bool is_eog(int32_t id) const;                         // end-of-generation set of reference §4.1
  const std::vector<int32_t>& eog_ids() const { return eog_ids_; }  // sorted
  const std::string& token_text(int32_t id) const;     // raw vocabulary string
  uint32_t token_attr(int32_t id) const;               // TokenAttr bits
  float token_score(int32_t id) const;
  int32_t token_id(std::string_view text) const;       // exact vocabulary lookup, kNoToken if absent
  const std::string& model() const { return model_; }  // "llama" | "gpt2"
  const std::string& pre() const { return pre_; }      // tokenizer.ggml.pre as stored ("" if absent)

  // Comma-separated pre-tokenizer names accepted for model "gpt2".
  static std::string supported_pre_types();

 private:
  Tokenizer();
  Status load_vocab(const GgufFile& f);
  Status load_special_ids(const GgufFile& f);
  void detect_special_tokens();
  void build_caches();

  // Splits `text` on special tokens: fragments are (offset, length, token) with token == kNoToken for raw.
  struct Fragment {
    size_t offset;
    size_t length;
    int32_t token;
  };
  std::vector<Fragment> split_special(std::string_view text, bool parse_special) const;
  void encode_spm(std::string_view fragment, bool prefix_space, std::vector<int32_t>& out) const;
  void encode_bpe(std::string_view fragment, std::vector<int32_t>& out) const;
  int32_t spm_byte_token(uint8_t byte) const;

  std::string model_;
  std::string pre_;
  bool is_spm_ = false;

  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<uint32_t> attrs_;
  StringIdMap text_to_id_;  // views into tokens_
  std::vector<std::string> pieces_;                           // token_to_piece(id, true)
  std::vector<int32_t> special_tokens_;                       // CONTROL|USER_DEFINED|UNKNOWN, longest first
  std::vector<int32_t> eog_ids_;

  int32_t bos_ = kNoToken, eos_ = kNoToken, eot_ = kNoToken, eom_ = kNoToken, unk_ = kNoToken;
  int32_t pad_ = kNoToken;
  int32_t fim_pre_ = kNoToken, fim_suf_ = kNoToken, fim_mid_ = kNoToken;
  int32_t fim_pad_ = kNoToken, fim_rep_ = kNoToken, fim_sep_ = kNoToken;
  bool add_bos_ = false;
  bool add_eos_ = false;
  bool add_space_prefix_ = false;
  bool clean_spaces_ = false;
  bool ignore_merges_ = false;

  std::unique_ptr<PreTokenizer> pretokenizer_;  // gpt2 only
  std::unique_ptr<BpeModel> bpe_;               // gpt2 only
};

// Turns a stream of token ids into text without ever emitting a partial UTF-8 sequence: bytes of an
// incomplete code point are held back until complete; bytes that can never form a valid sequence are
// emitted as U+FFFD at once; flush() emits a held-back incomplete tail as U+FFFD. Applies the same SPM
// leading-space rule as Tokenizer::decode() with the same `continuation` meaning, so for any sequence
// whose decode() is valid UTF-8, the concatenation of every push() and flush() equals decode().
// Not thread-safe; `tok` must outlive this object.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tok, bool render_special = false, bool continuation = false);
  std::string push(int32_t id);  // newly completed text (valid UTF-8, possibly empty)
  std::string flush();           // the rest; the detokenizer can be reused for a new sequence afterwards

 private:
  const Tokenizer& tok_;
  bool render_special_;
  bool continuation_;
  size_t n_pushed_ = 0;
  size_t strip_index_ = 0;  // index of the token that loses its leading space (SPM)
  std::string pending_;
};

}  // namespace frugal
