// A small Jinja interpreter for chat templates (tokenizer.chat_template in GGUF files, chat_template in Hugging
// Face's tokenizer_config.json). It implements the subset of Jinja2 that chat templates use, with the semantics
// of Hugging Face's reference JavaScript implementation, npm @huggingface/jinja 0.5.11, which
// src/chat/chat_template_test.cpp checks byte for byte on llama.cpp's collection of real templates.
//
// Supported (details in jinja_lexer.h, jinja_parser.h, jinja_builtins.h, jinja_value.h, jinja_eval.h):
//   * text, {{ expressions }}, {% statements %}, {# comments #}; whitespace control with "-" on any tag;
//     trim_blocks and lstrip_blocks on (as apply_chat_template sets them); transformers' {% generation %}
//     markers are ignored;
//   * statements: if/elif/else, for/else (loop.index, index0, revindex, revindex0, first, last, length,
//     previtem, nextitem; `for a, b in x.items()`; `for x in xs if cond`), set (incl. tuples, namespace
//     attributes and {% set x %}block{% endset %}), macro (defaults, varargs, kwargs), call blocks with
//     caller(), filter blocks, break, continue;
//   * expressions: literals (ints, floats, strings with escapes, true/false/none in either case, lists,
//     dicts, tuples), attribute and subscript access, slices (negative steps too), calls with keyword and
//     */** arguments, + - * / // % ** ~, comparisons, in / not in, and/or/not, `x if c else y`, is-tests,
//     filters;
//   * filters, tests, string/dict methods and globals (raise_exception, range, namespace, strftime_now) as
//     listed in jinja_builtins.h.
// Not supported: template inheritance and includes ({% extends %}, {% block %}, {% include %}, {% import %}),
// autoescaping, user-defined filters/tests, {% with %}, loop.cycle, list mutation (append/pop; the reference
// implementation lacks them too).
//
// Errors name the template position: "chat template:12:5: Unknown StringValue filter: foo".
// Thread-safety: a parsed template is immutable; render() may run concurrently on the same template.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_value.h"

namespace frugal::jinja {

class JinjaTemplate {
 public:
  // Syntax errors are returned here ("label:line:column: message").
  static StatusOr<JinjaTemplate> parse(std::string source, std::string label = "chat template");

  // Renders with `variables` as the template's globals next to the built-ins (true, none, range, namespace,
  // raise_exception, strftime_now, ...); a variable may not replace a built-in. strftime_now() reads the
  // clock `now_unix` (seconds since the epoch, UTC) so renders are reproducible.
  StatusOr<std::string> render(const ValueMap& variables, int64_t now_unix, const RenderLimits& limits = {}) const;

  const std::string& source() const;

 private:
  struct Parsed;
  explicit JinjaTemplate(std::shared_ptr<const Parsed> parsed) : parsed_(std::move(parsed)) {}
  std::shared_ptr<const Parsed> parsed_;
};

}  // namespace frugal::jinja
