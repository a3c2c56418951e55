// Evaluator of the Jinja-subset interpreter (internal; the public entry point is jinja_template.h).
//
// Scoping follows @huggingface/jinja 0.5.11: `for` bodies and macro calls get a child scope, `if` does not;
// `set` writes the innermost scope; macros see their caller's scope (dynamic scoping). A {% break %} or
// {% continue %} drops the output of the loop iteration it ends, and an iteration ended by either does not
// count for the loop's {% else %} -- both as @huggingface/jinja renders them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/status.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_value.h"

namespace frugal::jinja {

// Budgets against runaway templates (loops over huge ranges, deep recursion, output blow-up).
struct RenderLimits {
  uint64_t max_steps = 20'000'000;         // evaluated nodes
  size_t max_output_bytes = 64u << 20;     // any rendered string
  int max_call_depth = 64;                 // nested macro calls
};

class Scope {
 public:
  explicit Scope(std::shared_ptr<Scope> parent = nullptr) : parent_(std::move(parent)) {}
  // The innermost binding of `name`, or undefined.
  Value lookup(const std::string& name) const;
  bool has_own(const std::string& name) const { return vars_.count(name) != 0; }
  void set(const std::string& name, Value value) { vars_[name] = std::move(value); }

 private:
  std::shared_ptr<Scope> parent_;
  std::unordered_map<std::string, Value> vars_;
};

class Interpreter {
 public:
  Interpreter(std::string_view source, const std::string& label, const RenderLimits& limits)
      : source_(source), label_(label), limits_(limits) {}

  // Renders `body` with `globals` as the outermost scope.
  StatusOr<std::string> render(const NodeList& body, std::shared_ptr<Scope> globals);

  // Calls a function value (macros, caller(), builtins) from a builtin.
  StatusOr<Value> call(const Value& fn, ValueList& args, const std::shared_ptr<Scope>& scope, uint32_t pos);

 private:
  using ScopePtr = std::shared_ptr<Scope>;
  enum class Flow { kNone, kBreak, kContinue };

  Status error(uint32_t pos, const std::string& message) const;
  Status located(uint32_t pos, const Status& s) const;
  Status step(uint32_t pos);
  Status append(std::string* out, std::string_view text, uint32_t pos) const;

  Status exec_block(const NodeList& body, const ScopePtr& scope, std::string* out);
  Status exec(const Node& n, const ScopePtr& scope, std::string* out);
  Status exec_for(const Node& n, const ScopePtr& scope, std::string* out);
  Status exec_set(const Node& n, const ScopePtr& scope);
  Status exec_macro(const Node& n, const ScopePtr& scope);
  StatusOr<Value> exec_call_block(const Node& n, const ScopePtr& scope);
  Status bind_loop_target(const Node& target, const Value& item, Scope* scope, uint32_t pos);
  // Binds macro/caller parameters from call arguments (a trailing kwargs object included), evaluating the
  // defaults of unbound parameters in `scope` once every name is bound.
  Status bind_arguments(const std::string& display_name, const NodeList& params, bool uses_kwargs,
                        bool uses_varargs, ValueList& args, const ScopePtr& scope, uint32_t pos);

  StatusOr<Value> eval(const Node& n, const ScopePtr& scope);
  StatusOr<Value> eval_binary(const Node& n, const ScopePtr& scope);
  StatusOr<Value> eval_unary(const Node& n, const ScopePtr& scope);
  StatusOr<Value> eval_member(const Node& n, const ScopePtr& scope);
  StatusOr<Value> eval_slice(const Value& object, const Node& slice, const ScopePtr& scope);
  StatusOr<Value> eval_call(const Node& n, const ScopePtr& scope);
  StatusOr<Value> eval_filter(const Value& operand, const Node& filter, const ScopePtr& scope);
  StatusOr<Value> eval_test(const Node& n, const ScopePtr& scope);
  Status eval_arguments(const NodeList& args, const ScopePtr& scope, ValueList* positional, ValueMap* kwargs);

  std::string_view source_;
  const std::string& label_;
  RenderLimits limits_;
  uint64_t steps_ = 0;
  int call_depth_ = 0;
  int eval_depth_ = 0;
  Flow flow_ = Flow::kNone;
};

}  // namespace frugal::jinja
