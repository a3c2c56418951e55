// Tokenizer half of convert_hf_to_gguf: HF tokenizer.json (+ tokenizer_config.json, special_tokens_map.json)
// to the tokenizer.* GGUF keys. Contract in convert_hf.h.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <tuple>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "compress/convert_hf.h"
#include "gguf/gguf_writer.h"

namespace frugal {

namespace {

using nlohmann::json;

constexpr int32_t kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4, kTypeUnused = 5,
                  kTypeByte = 6;
constexpr float kNoMergeScore = -1e9f;

// Missing file: null json. Present but unparsable: error.
StatusOr<json> read_json_optional(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return json();
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(path + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt(path + ": not a JSON object");
  return j;
}

// "content" of a special-token entry that is either a string or {"content": ...}; "" if neither.
std::string token_content(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

bool is_byte_token(const std::string& t) {
  return t.size() == 6 && t[0] == '<' && t[1] == '0' && t[2] == 'x' && t[5] == '>' && std::isxdigit((uint8_t)t[3]) &&
         std::isxdigit((uint8_t)t[4]);
}

// Merges as (left, right) pairs: tokenizers writes "a b" strings (older) or ["a", "b"] arrays (newer).
StatusOr<std::vector<std::pair<std::string, std::string>>> read_merges(const std::string& where, const json& m) {
  std::vector<std::pair<std::string, std::string>> out;
  if (m.is_null()) return out;
  if (!m.is_array()) return corrupt(where + ": model.merges is not an array");
  out.reserve(m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    const json& e = m[i];
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) return corrupt(where + ": merge " + std::to_string(i) + " '" + s + "' has no space");
      out.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      out.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      return corrupt(where + ": merge " + std::to_string(i) + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }
  return out;
}

// Whether the normalizer / pre-tokenizer turns spaces into "▁" and whether it prepends one.
void spm_space_rules(const json& tj, bool* replaces_space, bool* prepends) {
  *replaces_space = false;
  *prepends = false;
  auto visit = [&](const json& n, auto&& self) -> void {
    if (!n.is_object()) return;
    const std::string type = n.value("type", "");
    if (type == "Sequence") {
      for (const char* key : {"normalizers", "pretokenizers"})
        if (n.contains(key) && n[key].is_array())
          for (const json& c : n[key]) self(c, self);
    } else if (type == "Prepend" && n.value("prepend", "") == "\xE2\x96\x81") {
      *prepends = true;
    } else if (type == "Replace" && n.value("content", "") == "\xE2\x96\x81" && n.contains("pattern") &&
               n["pattern"].is_object() && n["pattern"].value("String", "") == " ") {
      *replaces_space = true;
    } else if (type == "Metaspace") {
      *replaces_space = true;
      const std::string scheme = n.value("prepend_scheme", n.value("add_prefix_space", true) ? "always" : "never");
      *prepends = scheme != "never";
    }
  };
  if (tj.contains("normalizer")) visit(tj["normalizer"], visit);
  if (tj.contains("pre_tokenizer")) visit(tj["pre_tokenizer"], visit);
}

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;
};

// Token list from model.vocab + added_tokens, padded to n_vocab with [PADn] UNUSED.
Status build_tokens(const std::string& where, const json& tj, int64_t n_vocab, Vocab* v) {
  const json& model = tj["model"];
  if (!model.contains("vocab") || !model["vocab"].is_object()) return corrupt(where + ": model.vocab is not an object");
  int64_t n = 0;
  std::vector<std::pair<int64_t, std::string>> entries;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > (1 << 24))
      return corrupt(where + ": model.vocab['" + it.key() + "'] is not a token id");
    entries.emplace_back(it->get<int64_t>(), it.key());
  }
  std::vector<std::tuple<int64_t, std::string, bool>> added;
  if (tj.contains("added_tokens") && tj["added_tokens"].is_array())
    for (const json& a : tj["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
          !a["content"].is_string() || a["id"].get<int64_t>() < 0 || a["id"].get<int64_t>() > (1 << 24))
        return corrupt(where + ": malformed added_tokens entry");
      added.emplace_back(a["id"].get<int64_t>(), a["content"].get<std::string>(), a.value("special", false));
    }
  for (const auto& e : entries) n = std::max(n, e.first + 1);
  for (const auto& a : added) n = std::max(n, std::get<0>(a) + 1);
  if (n_vocab > 0 && n > n_vocab)
    return corrupt(where + ": " + std::to_string(n) + " tokens, more than config.json vocab_size " +
                   std::to_string(n_vocab));
  n = std::max(n, n_vocab);
  v->tokens.assign((size_t)n, std::string());
  v->types.assign((size_t)n, 0);
  v->scores.assign((size_t)n, kNoMergeScore);
  for (const auto& [id, text] : entries) {
    v->tokens[(size_t)id] = text;
    v->types[(size_t)id] = is_byte_token(text) ? kTypeByte : kTypeNormal;
  }
  for (const auto& [id, text, special] : added) {
    if (!v->tokens[(size_t)id].empty() && v->tokens[(size_t)id] != text)
      return corrupt(where + ": added token " + std::to_string(id) + " '" + text + "' conflicts with vocab '" +
                     v->tokens[(size_t)id] + "'");
    v->tokens[(size_t)id] = text;
    v->types[(size_t)id] = special ? kTypeControl : kTypeUserDefined;
  }
  for (int64_t i = 0; i < n; ++i)
    if (v->types[(size_t)i] == 0) {
      v->tokens[(size_t)i] = "[PAD" + std::to_string(i) + "]";
      v->types[(size_t)i] = kTypeUnused;
    }
  return Status::Ok();
}

int64_t find_token(const Vocab& v, const std::string& text) {
  if (text.empty()) return -1;
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (v.tokens[i] == text) return (int64_t)i;
  return -1;
}

// bos/eos/unk/pad ids and add_bos/add_eos/chat_template.
Status write_special(const std::string& dir, const json& tj, const Vocab& v, bool spm, GgufWriter* w,
                     std::vector<int32_t>* types) {
  FRUGAL_ASSIGN_OR_RETURN(json tc, read_json_optional(dir + "/tokenizer_config.json"));
  FRUGAL_ASSIGN_OR_RETURN(json sm, read_json_optional(dir + "/special_tokens_map.json"));
  FRUGAL_ASSIGN_OR_RETURN(json cfg, read_json_optional(dir + "/config.json"));
  const struct {
    const char* name;
    const char* key;
    const char* cfg_key;
  } kinds[] = {{"bos_token", "tokenizer.ggml.bos_token_id", "bos_token_id"},
               {"eos_token", "tokenizer.ggml.eos_token_id", "eos_token_id"},
               {"unk_token", "tokenizer.ggml.unknown_token_id", nullptr},
               {"pad_token", "tokenizer.ggml.padding_token_id", "pad_token_id"}};
  for (const auto& k : kinds) {
    std::string text;
    if (tc.is_object() && tc.contains(k.name)) text = token_content(tc[k.name]);
    if (text.empty() && sm.is_object() && sm.contains(k.name)) text = token_content(sm[k.name]);
    if (text.empty() && std::string(k.name) == "unk_token" && tj["model"].contains("unk_token"))
      text = token_content(tj["model"]["unk_token"]);
    int64_t id = find_token(v, text);
    if (id < 0 && k.cfg_key && cfg.is_object() && cfg.contains(k.cfg_key) && cfg[k.cfg_key].is_number_integer())
      id = cfg[k.cfg_key].get<int64_t>();
    if (id < 0 || id >= (int64_t)v.tokens.size()) continue;
    w->set_u32(k.key, (uint32_t)id);
    if (std::string(k.name) == "unk_token") (*types)[(size_t)id] = kTypeUnknown;
  }
  bool add_bos = spm, add_eos = false;
  if (tc.is_object()) {
    if (tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean()) add_bos = tc["add_bos_token"].get<bool>();
    if (tc.contains("add_eos_token") && tc["add_eos_token"].is_boolean()) add_eos = tc["add_eos_token"].get<bool>();
    if (tc.contains("chat_template") && tc["chat_template"].is_string())
      w->set_string("tokenizer.chat_template", tc["chat_template"].get<std::string>());
  }
  w->set_bool("tokenizer.ggml.add_bos_token", add_bos);
  w->set_bool("tokenizer.ggml.add_eos_token", add_eos);
  return Status::Ok();
}

}  // namespace

Status write_hf_tokenizer(const std::string& hf_dir, int64_t n_vocab, const std::string& gguf_arch, GgufWriter* w,
                          std::string* tokenizer_model, int64_t* n_vocab_out) {
  const std::string where = hf_dir + "/tokenizer.json";
  FRUGAL_ASSIGN_OR_RETURN(json tj, read_json_optional(where));
  if (tj.is_null()) return not_found(where + ": not found (tokenizer.model-only checkpoints are not supported)");
  if (!tj.contains("model") || !tj["model"].is_object()) return corrupt(where + ": no 'model' object");
  const json& model = tj["model"];
  const std::string type = model.value("type", "");
  if (type != "BPE") return unsupported(where + ": tokenizer model '" + type + "' is not supported (BPE)");
  Vocab v;
  FRUGAL_RETURN_IF_ERROR(build_tokens(where, tj, n_vocab, &v));
  FRUGAL_ASSIGN_OR_RETURN(auto merges, read_merges(where, model.contains("merges") ? model["merges"] : json()));
  const bool byte_fallback = model.value("byte_fallback", false);
  if (byte_fallback) {
    bool replaces_space = false, prepends = false;
    spm_space_rules(tj, &replaces_space, &prepends);
    if (!replaces_space)
      return unsupported(where + ": BPE with byte fallback but spaces are not mapped to U+2581 (no Replace or "
                                 "Metaspace): cannot be expressed as a SentencePiece-style GGUF vocabulary");
    // score = -(rank of the first merge producing the token): the SPM loop then merges in HF's rank order.
    std::map<std::string, int64_t> id_of;
    for (size_t i = 0; i < v.tokens.size(); ++i) id_of.emplace(v.tokens[i], (int64_t)i);
    for (size_t r = merges.size(); r-- > 0;) {
      auto it = id_of.find(merges[r].first + merges[r].second);
      if (it != id_of.end()) v.scores[(size_t)it->second] = -(float)r;
    }
    *tokenizer_model = "llama";
    w->set_string("tokenizer.ggml.model", "llama");
    w->set_string("tokenizer.ggml.pre", "default");
    w->set_bool("tokenizer.ggml.add_space_prefix", prepends);
  } else {
    *tokenizer_model = "gpt2";
    w->set_string("tokenizer.ggml.model", "gpt2");
    w->set_string("tokenizer.ggml.pre", gguf_arch == "qwen2" ? "qwen2" : "llama-bpe");
    std::vector<std::string> m;
    m.reserve(merges.size());
    for (const auto& [a, b] : merges) m.push_back(a + " " + b);
    w->set_string_array("tokenizer.ggml.merges", m);
  }
  FRUGAL_RETURN_IF_ERROR(write_special(hf_dir, tj, v, byte_fallback, w, &v.types));
  w->set_string_array("tokenizer.ggml.tokens", v.tokens);
  if (byte_fallback) w->set_f32_array("tokenizer.ggml.scores", v.scores);
  w->set_i32_array("tokenizer.ggml.token_type", v.types);
  *n_vocab_out = (int64_t)v.tokens.size();
  return Status::Ok();
}

}  // namespace frugal
