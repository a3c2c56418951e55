#include "chat/jinja_template.h"

#include <utility>

#include "chat/jinja_builtins.h"
#include "chat/jinja_lexer.h"
#include "chat/jinja_parser.h"

namespace frugal::jinja {

struct JinjaTemplate::Parsed {
  std::string source;
  std::string label;
  NodeList body;
};

StatusOr<JinjaTemplate> JinjaTemplate::parse(std::string source, std::string label) {
  auto parsed = std::make_shared<Parsed>();
  parsed->source = std::move(source);
  parsed->label = std::move(label);
  FRUGAL_ASSIGN_OR_RETURN(std::vector<Token> tokens, tokenize(parsed->source, parsed->label));
  FRUGAL_ASSIGN_OR_RETURN(parsed->body, parse_tokens(tokens, parsed->source, parsed->label));
  return JinjaTemplate(std::move(parsed));
}

StatusOr<std::string> JinjaTemplate::render(const ValueMap& variables, int64_t now_unix,
                                            const RenderLimits& limits) const {
  auto globals = std::make_shared<Scope>();
  install_globals(globals.get(), now_unix);
  for (const auto& [name, value] : variables.entries()) {
    if (globals->has_own(name))
      return invalid_argument(parsed_->label + ": variable '" + name + "' would replace a built-in");
    globals->set(name, value);
  }
  Interpreter interpreter(parsed_->source, parsed_->label, limits);
  return interpreter.render(parsed_->body, globals);
}

const std::string& JinjaTemplate::source() const { return parsed_->source; }

}  // namespace frugal::jinja
