// Tokenizer::from_gguf: reading the vocabulary and deriving llama.cpp's special-token metadata.
#include <algorithm>
#include <cstdio>
#include <initializer_list>

#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace frugal {

namespace {

uint32_t attr_from_type(int64_t type) {
  switch (type) {
    case 1: return kAttrNormal;
    case 2: return kAttrUnknown;
    case 3: return kAttrControl;
    case 4: return kAttrUserDefined;
    case 5: return kAttrUnused;
    case 6: return kAttrByte;
    default: return kAttrUndefined;
  }
}

template <typename List>
bool is_one_of(std::string_view s, const List& list) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

// Texts that make a token end generation (llama.cpp's list).
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",  // <｜end▁of▁sentence｜>
};

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

std::string Tokenizer::supported_pre_types() { return supported_pre_type_names(); }

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const GgufFile& f) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  const std::string& path = f.path();
  FRUGAL_ASSIGN_OR_RETURN(t->model_, f.get_string("tokenizer.ggml.model"));
  FRUGAL_ASSIGN_OR_RETURN(t->pre_, f.get_string("tokenizer.ggml.pre", ""));
  const PreTypeInfo* pre_info = nullptr;
  if (t->model_ == "llama") {
    t->is_spm_ = true;
    t->bos_ = 1, t->eos_ = 2, t->unk_ = 0;
    t->add_bos_ = true;
    t->add_space_prefix_ = true;
  } else if (t->model_ == "gpt2") {
    t->bos_ = 11, t->eos_ = 11;  // llama.cpp's legacy defaults
    pre_info = find_pre_type(t->pre_.empty() ? std::string_view("default") : std::string_view(t->pre_));
    if (pre_info == nullptr) {
      return unsupported(path + ": tokenizer.ggml.pre '" + t->pre_ + "' is not supported (supported: " +
                         supported_pre_type_names() + ")");
    }
    t->clean_spaces_ = pre_info->clean_spaces;
    t->ignore_merges_ = pre_info->ignore_merges;
    t->add_bos_ = pre_info->add_bos;
  } else {
    return unsupported(path + ": tokenizer.ggml.model '" + t->model_ + "' is not supported (supported: llama, gpt2)");
  }
  FRUGAL_ASSIGN_OR_RETURN(t->add_space_prefix_, f.get_bool("tokenizer.ggml.add_space_prefix", t->add_space_prefix_));

  FRUGAL_RETURN_IF_ERROR(t->load_vocab(f));
  if (!t->is_spm_) {
    FRUGAL_ASSIGN_OR_RETURN(auto merges, f.get_string_array("tokenizer.ggml.merges"));
    t->bpe_ = BpeModel::build(t->text_to_id_, t->n_vocab(), merges);
    auto pt = PreTokenizer::create(pre_kind_patterns(pre_info->kind));
    if (!pt.ok()) return pt.status().with_context(path);
    t->pretokenizer_ = std::move(pt).value();
  }
  FRUGAL_RETURN_IF_ERROR(t->load_special_ids(f));
  t->detect_special_tokens();
  t->build_caches();
  return t;
}

Status Tokenizer::load_vocab(const GgufFile& f) {
  const std::string& path = f.path();
  FRUGAL_ASSIGN_OR_RETURN(auto texts, f.get_string_array("tokenizer.ggml.tokens"));
  if (texts.empty()) return corrupt(path + ": tokenizer.ggml.tokens is empty");
  if (texts.size() > static_cast<size_t>(INT32_MAX)) return corrupt(path + ": tokenizer.ggml.tokens too large");
  const size_t n = texts.size();
  tokens_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    // llama.cpp renames empty tokens so that every text is unique and non-empty.
    tokens_.emplace_back(texts[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : std::string(texts[i]));
  }
  text_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) text_to_id_.insert(tokens_[i], static_cast<int32_t>(i));  // first id wins

  scores_.assign(n, 0.0f);
  if (const GgufValue* v = f.find("tokenizer.ggml.scores")) {
    const bool is_float = v->elem_type == GgufType::FLOAT32, is_int = v->elem_type == GgufType::INT32;
    if (v->type != GgufType::ARRAY || !(is_float || is_int) || v->count < n) {
      return corrupt(path + ": tokenizer.ggml.scores must be an f32 or i32 array of at least " +
                     std::to_string(n) + " elements");
    }
    for (size_t i = 0; i < n; ++i) {
      scores_[i] = is_float ? static_cast<float>(v->array_float(i)) : static_cast<float>(v->array_int(i));
    }
  }
  attrs_.assign(n, kAttrNormal);
  if (const GgufValue* v = f.find("tokenizer.ggml.token_type")) {
    if (v->type != GgufType::ARRAY || v->elem_type != GgufType::INT32 || v->count < n) {
      return corrupt(path + ": tokenizer.ggml.token_type must be an i32 array of at least " + std::to_string(n) +
                     " elements");
    }
    for (size_t i = 0; i < n; ++i) attrs_[i] = attr_from_type(v->array_int(i));
  }
  return Status::Ok();
}

Status Tokenizer::load_special_ids(const GgufFile& f) {
  const int32_t n = n_vocab();
  struct Key {
    const char* name;
    int32_t* id;
  };
  const Key keys[] = {
      {"tokenizer.ggml.bos_token_id", &bos_},         {"tokenizer.ggml.eos_token_id", &eos_},
      {"tokenizer.ggml.eot_token_id", &eot_},         {"tokenizer.ggml.eom_token_id", &eom_},
      {"tokenizer.ggml.unknown_token_id", &unk_},     {"tokenizer.ggml.padding_token_id", &pad_},
      {"tokenizer.ggml.fim_pre_token_id", &fim_pre_}, {"tokenizer.ggml.fim_suf_token_id", &fim_suf_},
      {"tokenizer.ggml.fim_mid_token_id", &fim_mid_}, {"tokenizer.ggml.fim_pad_token_id", &fim_pad_},
      {"tokenizer.ggml.fim_rep_token_id", &fim_rep_}, {"tokenizer.ggml.fim_sep_token_id", &fim_sep_},
      {"tokenizer.ggml.prefix_token_id", &fim_pre_},  {"tokenizer.ggml.suffix_token_id", &fim_suf_},
      {"tokenizer.ggml.middle_token_id", &fim_mid_},
  };
  for (const Key& k : keys) {
    if (*k.id >= n) *k.id = kNoToken;  // a default outside this vocabulary
    if (f.find(k.name) == nullptr) continue;
    FRUGAL_ASSIGN_OR_RETURN(int64_t v, f.get_int(k.name));
    if (v >= 0 && v < n) *k.id = static_cast<int32_t>(v);  // out of range: keep the default, like llama.cpp
  }
  FRUGAL_ASSIGN_OR_RETURN(add_bos_, f.get_bool("tokenizer.ggml.add_bos_token", add_bos_));
  FRUGAL_ASSIGN_OR_RETURN(add_eos_, f.get_bool("tokenizer.ggml.add_eos_token", add_eos_));
  if (bos_ == kNoToken) add_bos_ = false;
  if (eos_ == kNoToken) add_eos_ = false;
  return Status::Ok();
}

// llama.cpp's text-based detection of EOT/EOM/FIM tokens (each only when its key was absent), forcing the
// detected tokens to CONTROL, then the end-of-generation set (reference §4.1).
void Tokenizer::detect_special_tokens() {
  struct Detect {
    int32_t* id;
    std::initializer_list<std::string_view> texts;
  };
  const Detect detects[] = {
      {&eot_, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
               "_<EOT>", "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "<end_of_utterance>"}},
      {&eom_, {"<|eom_id|>"}},
      {&fim_pre_, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
                   "<PRE>", "\xE2\x96\x81<PRE>", "<|code_prefix|>"}},
      {&fim_suf_, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>",
                   "<SUF>", "\xE2\x96\x81<SUF>", "<|code_suffix|>"}},
      {&fim_mid_, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
                   "<MID>", "\xE2\x96\x81<MID>", "<|code_middle|>"}},
      {&fim_pad_, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"}},
      {&fim_rep_, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}},
      {&fim_sep_, {"<|file_sep|>"}},
  };
  for (const Detect& d : detects) {
    if (*d.id != kNoToken) continue;
    for (int32_t id = 0; id < n_vocab(); ++id) {
      if (is_one_of(tokens_[id], d.texts)) {
        *d.id = id;
        attrs_[id] |= kAttrControl;
        break;
      }
    }
  }
  for (int32_t id = 0; id < n_vocab(); ++id) {
    if ((attrs_[id] & kAttrControl) && tokens_[id].find("unused") != std::string::npos) attrs_[id] |= kAttrUnused;
  }
  std::vector<int32_t> eog;
  for (int32_t id : {fim_pad_, fim_rep_, fim_sep_, eos_, eot_, eom_}) {
    if (id != kNoToken) eog.push_back(id);
  }
  for (int32_t id = 0; id < n_vocab(); ++id) {
    if (is_one_of(tokens_[id], kEogTexts)) {
      eog.push_back(id);
      attrs_[id] |= kAttrControl;
    }
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  eog_ids_ = std::move(eog);
}

void Tokenizer::build_caches() {
  const int32_t n = n_vocab();
  special_tokens_.clear();
  for (int32_t id = 0; id < n; ++id) {
    if (attrs_[id] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) special_tokens_.push_back(id);
  }
  std::stable_sort(special_tokens_.begin(), special_tokens_.end(),
                   [&](int32_t a, int32_t b) { return tokens_[a].size() > tokens_[b].size(); });

  pieces_.assign(n, std::string());
  for (int32_t id = 0; id < n; ++id) {
    const uint32_t attr = attrs_[id];
    const std::string& text = tokens_[id];
    std::string& piece = pieces_[id];
    if (attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) {
      piece = text;
    } else if (attr & kAttrNormal) {
      if (is_spm_) {
        for (size_t i = 0; i < text.size(); ++i) {
          if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
            piece += ' ';
            i += 2;
          } else {
            piece += text[i];
          }
        }
      } else {
        // Byte-level decode; a code point outside the byte map (never in a well-formed byte-level
        // vocabulary) is passed through as its own UTF-8.
        for (uint32_t cpt : utf8::decode_lenient(text)) {
          const int b = utf8::unicode_to_byte(cpt);
          if (b >= 0) {
            piece += static_cast<char>(b);
          } else {
            utf8::append(piece, cpt);
          }
        }
      }
    } else if (attr & kAttrByte) {
      unsigned v = 0;
      if (text.size() == 6 && std::sscanf(text.c_str(), "<0x%2x>", &v) == 1) {
        piece = std::string(1, static_cast<char>(v));
      } else {
        piece = text;
      }
    }
  }
}

bool Tokenizer::is_eog(int32_t id) const { return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id); }

const std::string& Tokenizer::token_text(int32_t id) const {
  FRUGAL_CHECK(id >= 0 && id < n_vocab());
  return tokens_[id];
}

uint32_t Tokenizer::token_attr(int32_t id) const {
  FRUGAL_CHECK(id >= 0 && id < n_vocab());
  return attrs_[id];
}

float Tokenizer::token_score(int32_t id) const {
  FRUGAL_CHECK(id >= 0 && id < n_vocab());
  return scores_[id];
}

static_assert(Tokenizer::kNoToken == StringIdMap::kAbsent);

int32_t Tokenizer::token_id(std::string_view text) const {
  return text_to_id_.find(text);  // StringIdMap::kAbsent == kNoToken
}

}  // namespace frugal
