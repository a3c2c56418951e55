// Lexer of the Jinja-subset interpreter: preprocessing and tokens exactly as @huggingface/jinja 0.5.11 with the
// options Hugging Face's apply_chat_template uses (trim_blocks and lstrip_blocks on):
//   1. one trailing "\n" of the template is dropped;
//   2. lstrip_blocks: spaces/tabs between a line start and "{%", "{#" (or "{-") are dropped;
//   3. trim_blocks: a "\n" right after "%}", "#}" (or "-}") is dropped;
//   4. transformers' {% generation %} / {% endgeneration %} markers are removed ({%- / -%} strip around them);
//   5. {%- {{- {#- strip whitespace before the tag, -%} -}} -#} after it (JavaScript's \s, Unicode included).
// Inside tags: identifiers [A-Za-z0-9_]+, integers and decimals ("1.5"; a "-" or "+" directly before a number is
// part of the literal unless it follows an operand), strings in '' or "" with escapes \n \t \r \b \f \v \' \"
// \\ \xHH \uHHHH, and the punctuation ( ) [ ] { } , . : | = + - ~ * / // % ** == != < > <= >=.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace frugal::jinja {

enum class Tok : uint8_t {
  kText,
  kNumber,
  kString,
  kIdent,
  kEquals,
  kOpenParen,
  kCloseParen,
  kOpenStatement,
  kCloseStatement,
  kOpenExpression,
  kCloseExpression,
  kOpenBracket,
  kCloseBracket,
  kOpenBrace,
  kCloseBrace,
  kComma,
  kDot,
  kColon,
  kPipe,
  kAdditive,        // + - ~
  kMultiplicative,  // * / // %
  kPower,           // **
  kComparison,      // == != < > <= >=
  kUnary,           // a lone + or - in operand position
  kComment,
};

struct Token {
  Tok type;
  std::string value;
  uint32_t pos;  // byte offset of the token in the original source
};

// "label:line:column" for a byte offset of `source` (1-based; the column counts code points).
std::string source_location(std::string_view source, uint32_t pos, const std::string& label);

// Tokens of `source`; a syntax error is "label:line:column: message".
StatusOr<std::vector<Token>> tokenize(std::string_view source, const std::string& label);

}  // namespace frugal::jinja
