#include "chat/jinja_lexer.h"

#include <cstring>
#include <utility>

#include "chat/jinja_value.h"

namespace frugal::jinja {
namespace {

// Preprocessed text with, for each byte, its offset in the original source (for error positions).
struct Mapped {
  std::string text;
  std::vector<uint32_t> origin;
  void push(char c, uint32_t from) {
    text += c;
    origin.push_back(from);
  }
  void pop_to(size_t n) {
    text.resize(n);
    origin.resize(n);
  }
};

bool is_line_start(const Mapped& in, size_t i) {
  if (i == 0) return true;
  char p = in.text[i - 1];
  if (p == '\n' || p == '\r') return true;
  // U+2028 / U+2029 (E2 80 A8 / A9) also end lines for JavaScript's multiline ^.
  return i >= 3 && in.text.compare(i - 3, 2, "\xe2\x80") == 0 &&
         (in.text[i - 1] == '\xa8' || in.text[i - 1] == '\xa9');
}

Mapped lstrip_blocks(const Mapped& in) {
  Mapped out;
  size_t i = 0, n = in.text.size();
  while (i < n) {
    if (is_line_start(in, i)) {
      size_t j = i;
      while (j < n && (in.text[j] == ' ' || in.text[j] == '\t')) ++j;
      if (j > i && j + 1 < n && in.text[j] == '{' && std::strchr("#%-", in.text[j + 1]) != nullptr) i = j;
    }
    out.push(in.text[i], in.origin[i]);
    ++i;
  }
  return out;
}

Mapped trim_blocks(const Mapped& in) {
  Mapped out;
  for (size_t i = 0; i < in.text.size(); ++i) {
    if (in.text[i] == '\n' && i >= 2 && in.text[i - 1] == '}' && std::strchr("#%-", in.text[i - 2]) != nullptr &&
        in.text[i - 2] != '\0')
      continue;
    out.push(in.text[i], in.origin[i]);
  }
  return out;
}

// Length of the JavaScript whitespace code point at s[i] (0 if none).
size_t space_at(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  size_t j = i;
  return is_js_space(next_code_point(s, &j)) ? j - i : 0;
}

// Matches {%-? \s* (end)?generation \s* -?%} at i; returns its length (0 if none) and the two strip flags.
size_t match_generation(std::string_view s, size_t i, bool* lstrip, bool* rstrip) {
  if (s.compare(i, 2, "{%") != 0) return 0;
  size_t j = i + 2;
  *lstrip = j < s.size() && s[j] == '-';
  if (*lstrip) ++j;
  while (size_t k = space_at(s, j)) j += k;
  if (s.compare(j, 3, "end") == 0 && s.compare(j + 3, 10, "generation") == 0) j += 3;
  if (s.compare(j, 10, "generation") != 0) return 0;
  j += 10;
  while (size_t k = space_at(s, j)) j += k;
  *rstrip = j < s.size() && s[j] == '-';
  if (*rstrip) ++j;
  if (s.compare(j, 2, "%}") != 0) return 0;
  return j + 2 - i;
}

Mapped strip_generation_tags(const Mapped& in) {
  Mapped out;
  std::string_view s = in.text;
  size_t boundary = 0;  // output bytes before this belong to an earlier match
  size_t i = 0;
  while (i < s.size()) {
    bool lstrip = false, rstrip = false;
    size_t len = s[i] == '{' ? match_generation(s, i, &lstrip, &rstrip) : 0;
    if (len == 0) {
      out.push(s[i], in.origin[i]);
      ++i;
      continue;
    }
    if (lstrip) {
      std::string_view tail = std::string_view(out.text).substr(boundary);
      out.pop_to(boundary + trim_end(tail).size());
    }
    i += len;
    size_t after = i;
    while (size_t k = space_at(s, i)) i += k;
    if (!rstrip)
      for (size_t k = after; k < i; ++k) out.push(s[k], in.origin[k]);
    boundary = out.text.size();
  }
  return out;
}

struct Rule {
  const char* seq;
  Tok type;
};
// Order matters: longer operators before their prefixes.
constexpr Rule kRules[] = {
    {"{%", Tok::kOpenStatement}, {"%}", Tok::kCloseStatement}, {"{{", Tok::kOpenExpression},
    {"}}", Tok::kCloseExpression}, {"(", Tok::kOpenParen},     {")", Tok::kCloseParen},
    {"{", Tok::kOpenBrace},        {"}", Tok::kCloseBrace},     {"[", Tok::kOpenBracket},
    {"]", Tok::kCloseBracket},     {",", Tok::kComma},          {".", Tok::kDot},
    {":", Tok::kColon},            {"|", Tok::kPipe},           {"<=", Tok::kComparison},
    {">=", Tok::kComparison},      {"==", Tok::kComparison},    {"!=", Tok::kComparison},
    {"<", Tok::kComparison},       {">", Tok::kComparison},     {"+", Tok::kAdditive},
    {"-", Tok::kAdditive},         {"~", Tok::kAdditive},       {"**", Tok::kPower},
    {"*", Tok::kMultiplicative},   {"//", Tok::kMultiplicative}, {"/", Tok::kMultiplicative},
    {"%", Tok::kMultiplicative},   {"=", Tok::kEquals},
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  Lexer(std::string_view source, const std::string& label, Mapped src)
      : source_(source), label_(label), src_(std::move(src)), s_(src_.text) {}

  StatusOr<std::vector<Token>> run();

 private:
  Status error(size_t at, const std::string& message) const {
    uint32_t pos = at < src_.origin.size() ? src_.origin[at] : static_cast<uint32_t>(source_.size());
    return invalid_argument(source_location(source_, pos, label_) + ": " + message);
  }
  uint32_t origin(size_t at) const {
    return at < src_.origin.size() ? src_.origin[at] : static_cast<uint32_t>(source_.size());
  }
  void push(Tok type, std::string value, size_t at) { tokens_.push_back({type, std::move(value), origin(at)}); }
  Tok last_type() const { return tokens_.back().type; }
  void strip_trailing_whitespace() {
    if (!tokens_.empty() && tokens_.back().type == Tok::kText) {
      tokens_.back().value = std::string(trim_end(tokens_.back().value));
      if (tokens_.back().value.empty()) tokens_.pop_back();
    }
  }
  void skip_whitespace() {
    while (size_t k = space_at(s_, pos_)) pos_ += k;
  }
  bool at(const char* seq) const { return s_.compare(pos_, std::strlen(seq), seq) == 0; }
  // The digits (and escapes, in strings) @huggingface/jinja's consumeWhile collects; like it, running into the
  // end of the template after a consumed character is an error.
  StatusOr<std::string> consume_while(bool (*pred)(char, char), char arg);
  Status lex_comment();
  Status lex_in_tag();

  std::string_view source_;
  const std::string& label_;
  Mapped src_;
  std::string_view s_;
  size_t pos_ = 0;
  int curly_depth_ = 0;
  std::vector<Token> tokens_;
};

StatusOr<std::string> Lexer::consume_while(bool (*pred)(char, char), char arg) {
  std::string out;
  while (pos_ < s_.size() && pred(s_[pos_], arg)) {
    if (s_[pos_] == '\\') {
      size_t start = pos_++;
      if (pos_ >= s_.size()) return error(start, "unexpected end of template in a string escape");
      char e = s_[pos_++];
      if (e == 'x' || e == 'u') {
        size_t len = e == 'x' ? 2 : 4;
        uint32_t cp = 0;
        for (size_t k = 0; k < len; ++k) {
          int h = pos_ + k < s_.size() ? hex_value(s_[pos_ + k]) : -1;
          if (h < 0) return error(start, std::string("invalid hexadecimal escape sequence \\") + e);
          cp = cp * 16 + static_cast<uint32_t>(h);
        }
        append_utf8(&out, cp);
        pos_ += len;
        continue;
      }
      static const char kFrom[] = "ntrbfv'\"\\";
      static const char kTo[] = "\n\t\r\b\f\v'\"\\";
      const char* p = std::strchr(kFrom, e);
      if (p == nullptr || e == '\0') return error(start, std::string("unexpected escaped character '") + e + "'");
      out += kTo[p - kFrom];
      continue;
    }
    out += s_[pos_++];
    if (pos_ >= s_.size()) return error(pos_ - 1, "unexpected end of template");
  }
  return out;
}

Status Lexer::lex_comment() {
  size_t start = pos_;
  pos_ += 2;
  bool strip_before = pos_ < s_.size() && s_[pos_] == '-';
  if (strip_before) ++pos_;
  size_t end = s_.find("#}", pos_);
  if (end == std::string_view::npos) return error(start, "missing end of comment tag '#}'");
  std::string comment(s_.substr(pos_, end - pos_));
  bool strip_after = !comment.empty() && comment.back() == '-';
  if (strip_after) comment.pop_back();
  if (strip_before) strip_trailing_whitespace();
  push(Tok::kComment, comment, start);
  pos_ = end + 2;
  if (strip_after) skip_whitespace();
  return Status::Ok();
}

Status Lexer::lex_in_tag() {
  char c = s_[pos_];
  size_t start = pos_;
  if (c == '-' || c == '+') {
    if (tokens_.empty() || last_type() == Tok::kText) return error(pos_, std::string("unexpected character '") + c + "'");
    Tok t = last_type();
    bool binary = t == Tok::kIdent || t == Tok::kNumber || t == Tok::kString || t == Tok::kCloseParen ||
                  t == Tok::kCloseBracket;
    if (!binary) {
      ++pos_;
      FRUGAL_ASSIGN_OR_RETURN(std::string num, consume_while([](char ch, char) { return is_digit(ch); }, 0));
      if (!num.empty() && pos_ + 1 < s_.size() && s_[pos_] == '.' && is_digit(s_[pos_ + 1])) {
        ++pos_;
        FRUGAL_ASSIGN_OR_RETURN(std::string frac, consume_while([](char ch, char) { return is_digit(ch); }, 0));
        num += "." + frac;
      }
      push(num.empty() ? Tok::kUnary : Tok::kNumber, std::string(1, c) + num, start);
      return Status::Ok();
    }
  }
  for (const Rule& rule : kRules) {
    if (rule.type == Tok::kCloseExpression && curly_depth_ > 0) continue;
    if (!at(rule.seq)) continue;
    push(rule.type, rule.seq, start);
    if (rule.type == Tok::kOpenExpression) curly_depth_ = 0;
    if (rule.type == Tok::kOpenBrace) ++curly_depth_;
    if (rule.type == Tok::kCloseBrace) --curly_depth_;
    pos_ += std::strlen(rule.seq);
    return Status::Ok();
  }
  if (c == '\'' || c == '"') {
    ++pos_;
    FRUGAL_ASSIGN_OR_RETURN(std::string str, consume_while([](char ch, char q) { return ch != q; }, c));
    if (pos_ >= s_.size()) return error(start, "unterminated string literal");
    push(Tok::kString, str, start);
    ++pos_;
    return Status::Ok();
  }
  if (is_digit(c)) {
    FRUGAL_ASSIGN_OR_RETURN(std::string num, consume_while([](char ch, char) { return is_digit(ch); }, 0));
    if (last_type() != Tok::kDot && pos_ + 1 < s_.size() && s_[pos_] == '.' && is_digit(s_[pos_ + 1])) {
      ++pos_;
      FRUGAL_ASSIGN_OR_RETURN(std::string frac, consume_while([](char ch, char) { return is_digit(ch); }, 0));
      num += "." + frac;
    }
    push(Tok::kNumber, num, start);
    return Status::Ok();
  }
  if (is_word(c)) {
    FRUGAL_ASSIGN_OR_RETURN(std::string word, consume_while([](char ch, char) { return is_word(ch); }, 0));
    push(Tok::kIdent, word, start);
    return Status::Ok();
  }
  return error(pos_, std::string("unexpected character '") + std::string(code_points(s_.substr(pos_, 4))[0]) + "'");
}

StatusOr<std::vector<Token>> Lexer::run() {
  while (pos_ < s_.size()) {
    bool after_tag = tokens_.empty() || last_type() == Tok::kCloseStatement ||
                     last_type() == Tok::kCloseExpression || last_type() == Tok::kComment;
    if (after_tag) {
      size_t start = pos_;
      while (pos_ < s_.size() &&
             !(s_[pos_] == '{' && pos_ + 1 < s_.size() && std::strchr("%{#", s_[pos_ + 1]) && s_[pos_ + 1])) {
        ++pos_;
      }
      if (pos_ > start) {
        push(Tok::kText, std::string(s_.substr(start, pos_ - start)), start);
        continue;
      }
    }
    if (at("{#")) {
      FRUGAL_RETURN_IF_ERROR(lex_comment());
      continue;
    }
    if (at("{%-") || at("{{-")) {
      strip_trailing_whitespace();
      bool stmt = s_[pos_ + 1] == '%';
      push(stmt ? Tok::kOpenStatement : Tok::kOpenExpression, stmt ? "{%" : "{{", pos_);
      if (!stmt) curly_depth_ = 0;
      pos_ += 3;
      continue;
    }
    // Whitespace inside tags separates tokens; like consumeWhile, it may not run into the end.
    while (size_t k = space_at(s_, pos_)) {
      pos_ += k;
      if (pos_ >= s_.size()) return error(pos_ - k, "unexpected end of template");
    }
    if (at("-%}") || at("-}}")) {
      bool stmt = s_[pos_ + 1] == '%';
      push(stmt ? Tok::kCloseStatement : Tok::kCloseExpression, stmt ? "%}" : "}}", pos_);
      pos_ += 3;
      skip_whitespace();
      continue;
    }
    FRUGAL_RETURN_IF_ERROR(lex_in_tag());
  }
  return std::move(tokens_);
}

}  // namespace

std::string source_location(std::string_view source, uint32_t pos, const std::string& label) {
  size_t line = 1, col = 1, i = 0;
  while (i < source.size() && i < pos) {
    if (source[i] == '\n') {
      ++line;
      col = 1;
      ++i;
    } else {
      next_code_point(source, &i);
      ++col;
    }
  }
  return label + ":" + std::to_string(line) + ":" + std::to_string(col);
}

StatusOr<std::vector<Token>> tokenize(std::string_view source, const std::string& label) {
  Mapped m;
  size_t n = source.size();
  if (n > 0 && source[n - 1] == '\n') --n;
  for (size_t i = 0; i < n; ++i) m.push(source[i], static_cast<uint32_t>(i));
  m = strip_generation_tags(trim_blocks(lstrip_blocks(m)));
  Lexer lexer(source, label, std::move(m));
  return lexer.run();
}

}  // namespace frugal::jinja
