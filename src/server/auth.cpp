#include "server/auth.h"

#include <cctype>
#include <charconv>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace frugal {

namespace {

bool is_key_char(unsigned char c) { return c > 0x20 && c < 0x7f; }

bool is_name_char(unsigned char c) {
  return std::isalnum(c) || c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
}

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

// Strips a comment: '#' at the start or after whitespace (a '#' inside a key is part of the key).
std::string_view strip_comment(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) return line.substr(0, i);
  }
  return line;
}

Status parse_limit(std::string_view value, const std::string& where, std::string_view attr, int64_t* out) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || p != value.data() + value.size() || v < 0) {
    return invalid_argument(where + ": " + std::string(attr) + "=" + std::string(value) +
                            " is not a non-negative integer");
  }
  *out = v;
  return Status::Ok();
}

std::string default_name(std::string_view key) { return "key-" + sha256_hex(key).substr(0, 8); }

// Parses the attributes after the key on one line.
Status parse_attributes(const std::vector<std::string_view>& words, const std::string& where, ApiKey* k) {
  bool has_name = false;
  for (size_t i = 1; i < words.size(); ++i) {
    const std::string_view w = words[i];
    const size_t eq = w.find('=');
    if (eq == std::string_view::npos) {
      return invalid_argument(where + ": expected ATTR=VALUE after the key, got '" + std::string(w) +
                              "' (attributes: name, rpm, tpm, concurrent)");
    }
    const std::string_view attr = w.substr(0, eq), value = w.substr(eq + 1);
    if (attr == "name") {
      if (value.empty()) return invalid_argument(where + ": empty name");
      for (unsigned char c : value) {
        if (!is_name_char(c)) {
          return invalid_argument(where + ": name '" + std::string(value) +
                                  "' has a character outside [A-Za-z0-9._:@-]");
        }
      }
      k->name = std::string(value);
      has_name = true;
    } else if (attr == "rpm") {
      FRUGAL_RETURN_IF_ERROR(parse_limit(value, where, attr, &k->limits.requests_per_minute));
    } else if (attr == "tpm") {
      FRUGAL_RETURN_IF_ERROR(parse_limit(value, where, attr, &k->limits.tokens_per_minute));
    } else if (attr == "concurrent") {
      FRUGAL_RETURN_IF_ERROR(parse_limit(value, where, attr, &k->limits.max_concurrent));
    } else {
      return invalid_argument(where + ": unknown attribute '" + std::string(attr) +
                              "' (expected name, rpm, tpm or concurrent)");
    }
  }
  if (!has_name) k->name = default_name(k->key);
  return Status::Ok();
}

Status check_key_text(std::string_view key, const std::string& where) {
  if (key.empty()) return invalid_argument(where + ": empty API key");
  for (unsigned char c : key) {
    if (!is_key_char(c)) return invalid_argument(where + ": API key has a space, control or non-ASCII byte");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<ApiKeys> ApiKeys::parse(std::string_view text, const std::string& source_name) {
  ApiKeys out;
  std::set<Sha256Digest> seen_keys;
  std::map<std::string, int> seen_names;  // name -> line
  size_t pos = 0;
  int line_no = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::vector<std::string_view> words = split_ws(strip_comment(line));
    if (words.empty()) {
      if (end == text.size()) break;
      continue;
    }
    const std::string where = source_name + ":" + std::to_string(line_no);
    FRUGAL_RETURN_IF_ERROR(check_key_text(words[0], where));
    ApiKey k;
    k.key = std::string(words[0]);
    FRUGAL_RETURN_IF_ERROR(parse_attributes(words, where, &k));
    const Sha256Digest d = sha256(k.key);
    if (!seen_keys.insert(d).second) return invalid_argument(where + ": duplicate API key (key '" + k.name + "')");
    auto [it, fresh] = seen_names.emplace(k.name, line_no);
    if (!fresh) {
      return invalid_argument(where + ": duplicate key name '" + k.name + "' (first on line " +
                              std::to_string(it->second) + ")");
    }
    out.keys_.push_back(std::move(k));
    out.digests_.push_back(d);
    if (end == text.size()) break;
  }
  if (out.keys_.empty()) return invalid_argument(source_name + ": no API keys in the file");
  return out;
}

StatusOr<ApiKeys> ApiKeys::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path + ": cannot open API keys file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return io_error(path + ": read error");
  return parse(ss.str(), path);
}

StatusOr<ApiKeys> ApiKeys::single(const std::string& key, KeyLimits limits) {
  FRUGAL_RETURN_IF_ERROR(check_key_text(key, "--api-key"));
  ApiKeys out;
  out.keys_.push_back(ApiKey{key, "default", limits});
  out.digests_.push_back(sha256(key));
  return out;
}

const ApiKey* ApiKeys::authenticate(std::string_view header) const {
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) header.remove_prefix(1);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) header.remove_suffix(1);
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size()) return nullptr;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower((unsigned char)header[i]) != kScheme[i]) return nullptr;
  }
  std::string_view key = header.substr(kScheme.size());
  if (key.front() != ' ' && key.front() != '\t') return nullptr;
  while (!key.empty() && (key.front() == ' ' || key.front() == '\t')) key.remove_prefix(1);
  return authenticate_key(key);
}

const ApiKey* ApiKeys::authenticate_key(std::string_view key) const {
  if (keys_.empty() || key.empty()) return nullptr;
  // Fixed-length digests compared with every configured key; the match index is selected without a
  // data-dependent branch, so the loop's duration does not depend on the key's bytes.
  const Sha256Digest d = sha256(key);
  size_t found = keys_.size();
  for (size_t i = 0; i < digests_.size(); ++i) {
    const size_t eq = digests_equal_ct(d, digests_[i]) ? 1 : 0;
    const size_t mask = (size_t)0 - eq;  // all ones when equal
    found = (found & ~mask) | (i & mask);
  }
  return found < keys_.size() ? &keys_[found] : nullptr;
}

const ApiKey* ApiKeys::find_by_name(std::string_view name) const {
  for (const ApiKey& k : keys_) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

}  // namespace frugal
