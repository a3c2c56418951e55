// Parser of the Jinja-subset interpreter: tokens (jinja_lexer.h) to a tree (jinja_ast.h), with
// @huggingface/jinja 0.5.11's grammar and precedence, lowest first:
//   x if c else y  /  x if c (undefined when c is false; in a for loop it filters items)
//   or < and < not < comparisons and in / not in (one level, left-assoc) < + - ~ < * / // % < **
//   < is-tests (x is [not] name) < filters (x | name[(args)]) < unary + - < calls, .attr, [index], [a:b:c]
//   < literals (numbers, strings with implicit concatenation, [lists], {dicts}, (tuples)), names.
// Statements: if/elif/else, for/else (with `loop`), set (expression, tuple or namespace attribute; block form
// {% set x %}...{% endset %}), macro (defaults), call (with caller arguments), filter blocks, break, continue.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace frugal::jinja {

// Parses a token list into the template body. Errors are "label:line:column: message" (positions in `source`).
StatusOr<NodeList> parse_tokens(const std::vector<Token>& tokens, std::string_view source, const std::string& label);

}  // namespace frugal::jinja
