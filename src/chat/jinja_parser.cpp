#include "chat/jinja_parser.h"

#include <cstdlib>
#include <set>
#include <utility>

namespace frugal::jinja {
namespace {

constexpr int kMaxNesting = 200;  // bounds recursion on hostile templates ("((((((...")

const char* tok_name(Tok t) {
  switch (t) {
    case Tok::kText: return "text";
    case Tok::kNumber: return "number";
    case Tok::kString: return "string";
    case Tok::kIdent: return "name";
    case Tok::kEquals: return "'='";
    case Tok::kOpenParen: return "'('";
    case Tok::kCloseParen: return "')'";
    case Tok::kOpenStatement: return "'{%'";
    case Tok::kCloseStatement: return "'%}'";
    case Tok::kOpenExpression: return "'{{'";
    case Tok::kCloseExpression: return "'}}'";
    case Tok::kOpenBracket: return "'['";
    case Tok::kCloseBracket: return "']'";
    case Tok::kOpenBrace: return "'{'";
    case Tok::kCloseBrace: return "'}'";
    case Tok::kComma: return "','";
    case Tok::kDot: return "'.'";
    case Tok::kColon: return "':'";
    case Tok::kPipe: return "'|'";
    case Tok::kAdditive:
    case Tok::kMultiplicative:
    case Tok::kPower:
    case Tok::kComparison:
    case Tok::kUnary: return "operator";
    case Tok::kComment: return "comment";
  }
  return "token";
}

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, std::string_view source, const std::string& label)
      : t_(tokens), source_(source), label_(label) {}

  StatusOr<NodeList> run() {
    NodeList body;
    while (cur_ < t_.size()) {
      FRUGAL_ASSIGN_OR_RETURN(NodePtr n, parse_any());
      body.push_back(std::move(n));
    }
    return body;
  }

 private:
  using R = StatusOr<NodePtr>;

  uint32_t pos() const { return cur_ < t_.size() ? t_[cur_].pos : static_cast<uint32_t>(source_.size()); }
  Status error(const std::string& message) const {
    return invalid_argument(source_location(source_, pos(), label_) + ": " + message);
  }
  Status unexpected(const std::string& what) const {
    if (cur_ >= t_.size()) return error("unexpected end of template, expected " + what);
    return error("expected " + what + ", got " + tok_name(t_[cur_].type) +
                 (t_[cur_].value.empty() ? "" : " '" + t_[cur_].value + "'"));
  }
  bool is(Tok type, size_t ahead = 0) const { return cur_ + ahead < t_.size() && t_[cur_ + ahead].type == type; }
  bool is_ident(const char* name, size_t ahead = 0) const {
    return is(Tok::kIdent, ahead) && t_[cur_ + ahead].value == name;
  }
  bool is_statement(std::initializer_list<const char*> names) const {
    if (!is(Tok::kOpenStatement) || !is(Tok::kIdent, 1)) return false;
    for (const char* n : names)
      if (t_[cur_ + 1].value == n) return true;
    return false;
  }
  Status expect(Tok type, const char* what) {
    if (!is(type)) return unexpected(what);
    ++cur_;
    return Status::Ok();
  }
  Status expect_end(const char* name) {  // {% name %}
    std::string what = std::string("{% ") + name + " %}";
    if (!is(Tok::kOpenStatement) || !is_ident(name, 1)) return unexpected(what);
    cur_ += 2;
    return expect(Tok::kCloseStatement, "'%}'");
  }
  NodePtr node(NodeKind k, uint32_t p) { return std::make_unique<Node>(k, p); }
  // Body statements until one of `names` opens a statement.
  Status parse_body(std::initializer_list<const char*> names, NodeList* out, const char* what) {
    while (!is_statement(names)) {
      if (cur_ >= t_.size()) return unexpected(what);
      FRUGAL_ASSIGN_OR_RETURN(NodePtr n, parse_any());
      out->push_back(std::move(n));
    }
    return Status::Ok();
  }

  R parse_any();
  R parse_statement();
  R parse_set(uint32_t p);
  R parse_if(uint32_t p);
  R parse_for(uint32_t p);
  R parse_macro(uint32_t p);
  R parse_call_block(uint32_t p);
  R parse_filter_block(uint32_t p);
  R parse_sequence(bool primary);
  R parse_expression();
  R parse_or();
  R parse_and();
  R parse_not();
  R parse_comparison();
  R parse_additive();
  R parse_multiplicative();
  R parse_power();
  R parse_test();
  R parse_filter();
  R parse_unary();
  R parse_call_member();
  R parse_call(NodePtr callee);
  R parse_member(NodePtr object);
  R parse_subscript();
  R parse_primary();
  Status parse_args(bool parameters, NodeList* out);

  const std::vector<Token>& t_;
  std::string_view source_;
  const std::string& label_;
  size_t cur_ = 0;
  int depth_ = 0;
};

struct DepthGuard {
  explicit DepthGuard(int* d) : d_(d) { ++*d_; }
  ~DepthGuard() { --*d_; }
  int* d_;
};

Parser::R Parser::parse_any() {
  DepthGuard guard(&depth_);
  if (depth_ > kMaxNesting) return error("template nested too deeply");
  const Token& tok = t_[cur_];
  switch (tok.type) {
    case Tok::kComment: {
      ++cur_;
      return node(NodeKind::kComment, tok.pos);
    }
    case Tok::kText: {
      NodePtr n = node(NodeKind::kText, tok.pos);
      n->name = tok.value;
      ++cur_;
      return n;
    }
    case Tok::kOpenStatement: return parse_statement();
    case Tok::kOpenExpression: {
      ++cur_;
      FRUGAL_ASSIGN_OR_RETURN(NodePtr e, parse_expression());
      FRUGAL_RETURN_IF_ERROR(expect(Tok::kCloseExpression, "'}}'"));
      return e;
    }
    default: return error(std::string("unexpected ") + tok_name(tok.type));
  }
}

Parser::R Parser::parse_statement() {
  ++cur_;  // {%
  if (!is(Tok::kIdent)) return unexpected("a statement name");
  uint32_t p = t_[cur_].pos;
  std::string name = t_[cur_++].value;
  NodePtr result;
  if (name == "set") return parse_set(p);
  if (name == "if") {
    FRUGAL_ASSIGN_OR_RETURN(result, parse_if(p));
    FRUGAL_RETURN_IF_ERROR(expect_end("endif"));
  } else if (name == "for") {
    FRUGAL_ASSIGN_OR_RETURN(result, parse_for(p));
    FRUGAL_RETURN_IF_ERROR(expect_end("endfor"));
  } else if (name == "macro") {
    FRUGAL_ASSIGN_OR_RETURN(result, parse_macro(p));
    FRUGAL_RETURN_IF_ERROR(expect_end("endmacro"));
  } else if (name == "call") {
    return parse_call_block(p);
  } else if (name == "filter") {
    return parse_filter_block(p);
  } else if (name == "break" || name == "continue") {
    FRUGAL_RETURN_IF_ERROR(expect(Tok::kCloseStatement, "'%}'"));
    return node(name == "break" ? NodeKind::kBreak : NodeKind::kContinue, p);
  } else {
    --cur_;
    return error("unknown statement '" + name + "'");
  }
  return result;
}

Parser::R Parser::parse_set(uint32_t p) {
  NodePtr n = node(NodeKind::kSet, p);
  FRUGAL_ASSIGN_OR_RETURN(n->x, parse_sequence(false));
  if (is(Tok::kEquals)) {
    ++cur_;
    FRUGAL_ASSIGN_OR_RETURN(n->y, parse_sequence(false));
  } else {
    FRUGAL_RETURN_IF_ERROR(expect(Tok::kCloseStatement, "'=' or '%}'"));
    FRUGAL_RETURN_IF_ERROR(parse_body({"endset"}, &n->body, "{% endset %}"));
    cur_ += 2;
  }
  FRUGAL_RETURN_IF_ERROR(expect(Tok::kCloseStatement, "'%}'"));
  return n;
}

Parser::R Parser::parse_if(uint32_t p) {
  NodePtr n = node(NodeKind::kIf, p);
  FRUGAL_ASSIGN_OR_RETURN(n->x, parse_expression());
  FRUGAL_RETURN_IF_ERROR(expect(Tok::kCloseStatement, "'%}'"));
  FRUGAL_RETURN_IF_ERROR(parse_body({"elif", "else", "endif"}, &n->body, "{% endif %}"));
  if (is_statement({"elif"})) {
    uint32_t q = t_[cur_ + 1].pos;
    cur_ += 2;
    FRUGAL_ASSIGN_OR_RETURN(NodePtr nested, parse_if(q));
    n->alt.push_back(std::move(nested));
  } else if (is_statement({"else"})) {
    cur_ += 2;
    FRUGAL_RETURN_IF_ERROR(expect(Tok::kCloseStatement, "'%}'"));
    FRUGAL_RETURN_IF_ERROR(parse_body({"endif"}, &n->alt, "{% endif %}"));
  }
  return n;
}

Parser::R Parser::parse_for(uint32_t p) {
  NodePtr n = node(NodeKind::kFor, p);
  FRUGAL_ASSIGN_OR_RETURN(n->x, parse_sequence(true));
  if (n->x->kind != NodeKind::kIdent && n->x->kind != NodeKind::kTuple)
    return error("expected a name or a tuple of names as the loop variable");
  if (!is_ident("in")) return unexpected("'in'");
  ++cur_;
  FRUGAL_ASSIGN_OR_RETURN(n->y, parse_expression());
  FRUGAL_RETURN_IF_ERROR(expect(Tok::kCloseStatement, "'%}'"));
  FRUGAL_RETURN_IF_ERROR(parse_body({"endfor", "else"}, &n->body, "{% endfor %}"));
  if (is_statement({"else"})) {
    cur_ += 2;
    FRUGAL_RETURN_IF_ERROR(expect(Tok::kCloseStatement, "'%}'"));
    FRUGAL_RETURN_IF_ERROR(parse_body({"endfor"}, &n->alt, "{% endfor %}"));
  }
  return n;
}

Parser::R Parser::parse_macro(uint32_t p) {
  NodePtr n = node(NodeKind::kMacro, p);
  FRUGAL_ASSIGN_OR_RETURN(NodePtr name, parse_primary());
  if (name->kind != NodeKind::kIdent) return error("expected a macro name");
  n->name = name->name;
  FRUGAL_RETURN_IF_ERROR(parse_args(true, &n->list));
  FRUGAL_RETURN_IF_ERROR(expect(Tok::kCloseStatement, "'%}'"));
  FRUGAL_RETURN_IF_ERROR(parse_body({"endmacro"}, &n->body, "{% endmacro %}"));
  return n;
}

Parser::R Parser::parse_call_block(uint32_t p) {
  NodePtr n = node(NodeKind::kCallBlock, p);
  if (is(Tok::kOpenParen)) FRUGAL_RETURN_IF_ERROR(parse_args(true, &n->list));
  FRUGAL_ASSIGN_OR_RETURN(NodePtr callee, parse_primary());
  if (callee->kind != NodeKind::kIdent) return error("expected a macro name after 'call'");
  NodePtr call = node(NodeKind::kCall, callee->pos);
  FRUGAL_RETURN_IF_ERROR(parse_args(false, &call->list));
  call->x = std::move(callee);
  n->x = std::move(call);
  FRUGAL_RETURN_IF_ERROR(expect(Tok::kCloseStatement, "'%}'"));
  FRUGAL_RETURN_IF_ERROR(parse_body({"endcall"}, &n->body, "{% endcall %}"));
  FRUGAL_RETURN_IF_ERROR(expect_end("endcall"));
  return n;
}

Parser::R Parser::parse_filter_block(uint32_t p) {
  NodePtr n = node(NodeKind::kFilterBlock, p);
  FRUGAL_ASSIGN_OR_RETURN(n->x, parse_primary());
  if (n->x->kind == NodeKind::kIdent && is(Tok::kOpenParen)) {
    FRUGAL_ASSIGN_OR_RETURN(n->x, parse_call(std::move(n->x)));
  }
  FRUGAL_RETURN_IF_ERROR(expect(Tok::kCloseStatement, "'%}'"));
  FRUGAL_RETURN_IF_ERROR(parse_body({"endfilter"}, &n->body, "{% endfilter %}"));
  FRUGAL_RETURN_IF_ERROR(expect_end("endfilter"));
  return n;
}

// expr[, expr...]: a tuple when there is a comma (for targets, set, parenthesized tuples).
Parser::R Parser::parse_sequence(bool primary) {
  uint32_t p = pos();
  FRUGAL_ASSIGN_OR_RETURN(NodePtr first, primary ? parse_primary() : parse_expression());
  if (!is(Tok::kComma)) return first;
  NodePtr tuple = node(NodeKind::kTuple, p);
  tuple->list.push_back(std::move(first));
  while (is(Tok::kComma)) {
    ++cur_;
    FRUGAL_ASSIGN_OR_RETURN(NodePtr next, primary ? parse_primary() : parse_expression());
    tuple->list.push_back(std::move(next));
  }
  return tuple;
}

Parser::R Parser::parse_expression() {
  DepthGuard guard(&depth_);
  if (depth_ > kMaxNesting) return error("expression nested too deeply");
  uint32_t p = pos();
  FRUGAL_ASSIGN_OR_RETURN(NodePtr a, parse_or());
  if (!is_ident("if")) return a;
  ++cur_;
  FRUGAL_ASSIGN_OR_RETURN(NodePtr test, parse_or());
  if (is_ident("else")) {
    ++cur_;
    NodePtr n = node(NodeKind::kTernary, p);
    FRUGAL_ASSIGN_OR_RETURN(n->z, parse_expression());
    n->x = std::move(test);
    n->y = std::move(a);
    return n;
  }
  NodePtr n = node(NodeKind::kSelect, p);
  n->x = std::move(a);
  n->y = std::move(test);
  return n;
}

static NodePtr binary(std::string op, uint32_t p, NodePtr l, NodePtr r) {
  NodePtr n = std::make_unique<Node>(NodeKind::kBinary, p);
  n->name = std::move(op);
  n->x = std::move(l);
  n->y = std::move(r);
  return n;
}

Parser::R Parser::parse_or() {
  FRUGAL_ASSIGN_OR_RETURN(NodePtr left, parse_and());
  while (is_ident("or")) {
    uint32_t p = t_[cur_++].pos;
    FRUGAL_ASSIGN_OR_RETURN(NodePtr right, parse_and());
    left = binary("or", p, std::move(left), std::move(right));
  }
  return left;
}

Parser::R Parser::parse_and() {
  FRUGAL_ASSIGN_OR_RETURN(NodePtr left, parse_not());
  while (is_ident("and")) {
    uint32_t p = t_[cur_++].pos;
    FRUGAL_ASSIGN_OR_RETURN(NodePtr right, parse_not());
    left = binary("and", p, std::move(left), std::move(right));
  }
  return left;
}

Parser::R Parser::parse_not() {
  if (!is_ident("not")) return parse_comparison();
  DepthGuard guard(&depth_);
  if (depth_ > kMaxNesting) return error("expression nested too deeply");
  NodePtr n = node(NodeKind::kUnary, t_[cur_++].pos);
  n->name = "not";
  FRUGAL_ASSIGN_OR_RETURN(n->x, parse_not());
  return n;
}

Parser::R Parser::parse_comparison() {
  FRUGAL_ASSIGN_OR_RETURN(NodePtr left, parse_additive());
  while (true) {
    std::string op;
    uint32_t p = pos();
    if (is_ident("not") && is_ident("in", 1)) {
      op = "not in";
      cur_ += 2;
    } else if (is_ident("in") || is(Tok::kComparison)) {
      op = t_[cur_++].value;
    } else {
      break;
    }
    FRUGAL_ASSIGN_OR_RETURN(NodePtr right, parse_additive());
    left = binary(op, p, std::move(left), std::move(right));
  }
  return left;
}

Parser::R Parser::parse_additive() {
  FRUGAL_ASSIGN_OR_RETURN(NodePtr left, parse_multiplicative());
  while (is(Tok::kAdditive)) {
    const Token& op = t_[cur_++];
    FRUGAL_ASSIGN_OR_RETURN(NodePtr right, parse_multiplicative());
    left = binary(op.value, op.pos, std::move(left), std::move(right));
  }
  return left;
}

Parser::R Parser::parse_multiplicative() {
  FRUGAL_ASSIGN_OR_RETURN(NodePtr left, parse_power());
  while (is(Tok::kMultiplicative)) {
    const Token& op = t_[cur_++];
    FRUGAL_ASSIGN_OR_RETURN(NodePtr right, parse_power());
    left = binary(op.value, op.pos, std::move(left), std::move(right));
  }
  return left;
}

Parser::R Parser::parse_power() {  // left-associative, as in Jinja
  FRUGAL_ASSIGN_OR_RETURN(NodePtr left, parse_test());
  while (is(Tok::kPower)) {
    const Token& op = t_[cur_++];
    FRUGAL_ASSIGN_OR_RETURN(NodePtr right, parse_test());
    left = binary(op.value, op.pos, std::move(left), std::move(right));
  }
  return left;
}

Parser::R Parser::parse_test() {
  FRUGAL_ASSIGN_OR_RETURN(NodePtr operand, parse_filter());
  while (is_ident("is")) {
    NodePtr n = node(NodeKind::kTest, t_[cur_++].pos);
    if (is_ident("not")) {
      n->flag = true;
      ++cur_;
    }
    FRUGAL_ASSIGN_OR_RETURN(NodePtr test, parse_primary());
    if (test->kind != NodeKind::kIdent) return error("expected a test name after 'is'");
    n->name = test->name;
    n->x = std::move(operand);
    operand = std::move(n);
  }
  return operand;
}

Parser::R Parser::parse_filter() {
  FRUGAL_ASSIGN_OR_RETURN(NodePtr operand, parse_unary());
  while (is(Tok::kPipe)) {
    NodePtr n = node(NodeKind::kFilter, t_[cur_++].pos);
    FRUGAL_ASSIGN_OR_RETURN(NodePtr filter, parse_primary());
    if (filter->kind != NodeKind::kIdent) return error("expected a filter name after '|'");
    if (is(Tok::kOpenParen)) {
      FRUGAL_ASSIGN_OR_RETURN(filter, parse_call(std::move(filter)));
    }
    n->x = std::move(operand);
    n->y = std::move(filter);
    operand = std::move(n);
  }
  return operand;
}

Parser::R Parser::parse_unary() {
  if ((is(Tok::kUnary) || is(Tok::kAdditive)) && (t_[cur_].value == "-" || t_[cur_].value == "+")) {
    DepthGuard guard(&depth_);
    if (depth_ > kMaxNesting) return error("expression nested too deeply");
    NodePtr n = node(NodeKind::kUnary, t_[cur_].pos);
    n->name = t_[cur_++].value;
    FRUGAL_ASSIGN_OR_RETURN(n->x, parse_unary());
    return n;
  }
  return parse_call_member();
}

Parser::R Parser::parse_call_member() {
  FRUGAL_ASSIGN_OR_RETURN(NodePtr primary, parse_primary());
  FRUGAL_ASSIGN_OR_RETURN(NodePtr member, parse_member(std::move(primary)));
  if (is(Tok::kOpenParen)) return parse_call(std::move(member));
  return member;
}

Parser::R Parser::parse_call(NodePtr callee) {
  while (true) {
    NodePtr call = node(NodeKind::kCall, pos());
    FRUGAL_RETURN_IF_ERROR(parse_args(false, &call->list));
    call->x = std::move(callee);
    FRUGAL_ASSIGN_OR_RETURN(callee, parse_member(std::move(call)));
    if (!is(Tok::kOpenParen)) return callee;
  }
}

// (a, b=1, *rest, **kw) for calls; (a, b=1) for macro and caller parameters.
Status Parser::parse_args(bool parameters, NodeList* out) {
  FRUGAL_RETURN_IF_ERROR(expect(Tok::kOpenParen, "'('"));
  std::set<std::string> names;
  bool saw_keyword = false, saw_spread = false;
  while (!is(Tok::kCloseParen)) {
    if (cur_ >= t_.size()) return unexpected("')'");
    uint32_t p = pos();
    bool kw_spread = is(Tok::kPower);
    bool spread = is(Tok::kMultiplicative) && t_[cur_].value == "*";
    if (parameters && (kw_spread || spread)) return error("argument unpacking is not allowed in parameters");
    if (kw_spread) {
      ++cur_;
      NodePtr n = node(NodeKind::kKwSpread, p);
      FRUGAL_ASSIGN_OR_RETURN(n->x, parse_expression());
      out->push_back(std::move(n));
      if (is(Tok::kComma)) ++cur_;
      if (!is(Tok::kCloseParen)) return error("'**' must be applied to the last argument");
      break;
    }
    NodePtr arg;
    if (spread) {
      if (saw_spread) return error("only one '*' argument unpacking is allowed");
      saw_spread = true;
      ++cur_;
      arg = node(NodeKind::kSpread, p);
      FRUGAL_ASSIGN_OR_RETURN(arg->x, parse_expression());
    } else {
      FRUGAL_ASSIGN_OR_RETURN(arg, parse_expression());
      if (is(Tok::kEquals)) {
        ++cur_;
        if (arg->kind != NodeKind::kIdent) return error("expected a name before '='");
        NodePtr kw = node(NodeKind::kKwarg, p);
        kw->name = arg->name;
        FRUGAL_ASSIGN_OR_RETURN(kw->x, parse_expression());
        arg = std::move(kw);
      }
      if (parameters) {
        if (arg->kind != NodeKind::kIdent && arg->kind != NodeKind::kKwarg) return error("expected a parameter name");
        if (!names.insert(arg->name).second) return error("duplicate parameter '" + arg->name + "'");
      }
      if (arg->kind == NodeKind::kKwarg) {
        saw_keyword = true;
      } else if (saw_keyword) {
        return error(parameters ? "non-default parameter follows a default one"
                                : "positional argument follows a keyword argument");
      } else if (saw_spread) {
        return error("positional argument follows '*' unpacking");
      }
    }
    out->push_back(std::move(arg));
    if (is(Tok::kComma)) ++cur_;
  }
  return expect(Tok::kCloseParen, "')'");
}

Parser::R Parser::parse_member(NodePtr object) {
  while (is(Tok::kDot) || is(Tok::kOpenBracket)) {
    bool computed = is(Tok::kOpenBracket);
    NodePtr n = node(NodeKind::kMember, t_[cur_++].pos);
    n->flag = computed;
    if (computed) {
      FRUGAL_ASSIGN_OR_RETURN(n->y, parse_subscript());
      FRUGAL_RETURN_IF_ERROR(expect(Tok::kCloseBracket, "']'"));
    } else {
      FRUGAL_ASSIGN_OR_RETURN(n->y, parse_primary());
      if (n->y->kind != NodeKind::kIdent && n->y->kind != NodeKind::kInt)
        return error("expected a name or an integer after '.'");
    }
    n->x = std::move(object);
    object = std::move(n);
  }
  return object;
}

// [expr] or a slice [a:b:c] with any part omitted.
Parser::R Parser::parse_subscript() {
  uint32_t p = pos();
  NodeList parts;
  bool slice = false;
  while (!is(Tok::kCloseBracket)) {
    if (cur_ >= t_.size()) return unexpected("']'");
    if (is(Tok::kColon)) {
      parts.push_back(nullptr);
      ++cur_;
      slice = true;
    } else {
      FRUGAL_ASSIGN_OR_RETURN(NodePtr e, parse_expression());
      parts.push_back(std::move(e));
      if (is(Tok::kColon)) {
        ++cur_;
        slice = true;
      }
    }
  }
  if (parts.empty()) return error("expected an index or a slice inside '[]'");
  if (!slice) return std::move(parts[0]);
  if (parts.size() > 3) return error("a slice has at most 3 parts");
  NodePtr n = node(NodeKind::kSlice, p);
  parts.resize(3);
  n->x = std::move(parts[0]);
  n->y = std::move(parts[1]);
  n->z = std::move(parts[2]);
  return n;
}

Parser::R Parser::parse_primary() {
  if (cur_ >= t_.size()) return unexpected("an expression");
  DepthGuard guard(&depth_);
  if (depth_ > kMaxNesting) return error("expression nested too deeply");
  const Token& tok = t_[cur_++];
  switch (tok.type) {
    case Tok::kNumber: {
      bool is_float = tok.value.find('.') != std::string::npos;
      NodePtr n = node(is_float ? NodeKind::kFloat : NodeKind::kInt, tok.pos);
      if (is_float) {
        n->float_value = std::strtod(tok.value.c_str(), nullptr);
      } else {
        n->int_value = std::strtoll(tok.value.c_str(), nullptr, 10);
      }
      return n;
    }
    case Tok::kString: {
      NodePtr n = node(NodeKind::kString, tok.pos);
      n->name = tok.value;
      while (is(Tok::kString)) n->name += t_[cur_++].value;
      return n;
    }
    case Tok::kIdent: {
      NodePtr n = node(NodeKind::kIdent, tok.pos);
      n->name = tok.value;
      return n;
    }
    case Tok::kOpenParen: {
      FRUGAL_ASSIGN_OR_RETURN(NodePtr e, parse_sequence(false));
      FRUGAL_RETURN_IF_ERROR(expect(Tok::kCloseParen, "')'"));
      return e;
    }
    case Tok::kOpenBracket: {
      NodePtr n = node(NodeKind::kArray, tok.pos);
      while (!is(Tok::kCloseBracket)) {
        if (cur_ >= t_.size()) return unexpected("']'");
        FRUGAL_ASSIGN_OR_RETURN(NodePtr e, parse_expression());
        n->list.push_back(std::move(e));
        if (is(Tok::kComma)) ++cur_;
      }
      ++cur_;
      return n;
    }
    case Tok::kOpenBrace: {
      NodePtr n = node(NodeKind::kObject, tok.pos);
      while (!is(Tok::kCloseBrace)) {
        if (cur_ >= t_.size()) return unexpected("'}'");
        FRUGAL_ASSIGN_OR_RETURN(NodePtr key, parse_expression());
        FRUGAL_RETURN_IF_ERROR(expect(Tok::kColon, "':' between key and value"));
        FRUGAL_ASSIGN_OR_RETURN(NodePtr value, parse_expression());
        n->pairs.emplace_back(std::move(key), std::move(value));
        if (is(Tok::kComma)) ++cur_;
      }
      ++cur_;
      return n;
    }
    default:
      --cur_;
      return unexpected("an expression");
  }
}

}  // namespace

StatusOr<NodeList> parse_tokens(const std::vector<Token>& tokens, std::string_view source, const std::string& label) {
  Parser parser(tokens, source, label);
  return parser.run();
}

}  // namespace frugal::jinja
