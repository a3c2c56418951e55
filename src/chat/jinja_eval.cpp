#include "chat/jinja_eval.h"

#include <cmath>
#include <functional>

#include "chat/jinja_builtins.h"
#include "chat/jinja_lexer.h"

namespace frugal::jinja {
namespace {

struct DepthGuard {
  explicit DepthGuard(int* d) : d_(d) { ++*d_; }
  ~DepthGuard() { --*d_; }
  int* d_;
};

// Whether `kwargs` / `varargs` are read anywhere under a macro or call-block body.
void find_special_names(const Node& n, bool* kwargs, bool* varargs) {
  if (n.kind == NodeKind::kIdent) {
    *kwargs = *kwargs || n.name == "kwargs";
    *varargs = *varargs || n.name == "varargs";
  }
  for (const Node* c : {n.x.get(), n.y.get(), n.z.get()})
    if (c) find_special_names(*c, kwargs, varargs);
  for (const NodeList* l : {&n.list, &n.body, &n.alt})
    for (const auto& c : *l) find_special_names(*c, kwargs, varargs);
  for (const auto& [k, v] : n.pairs) {
    find_special_names(*k, kwargs, varargs);
    find_special_names(*v, kwargs, varargs);
  }
}

}  // namespace

Value Scope::lookup(const std::string& name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent_.get()) {
    auto it = s->vars_.find(name);
    if (it != s->vars_.end()) return it->second;
  }
  return Value();
}

Status Interpreter::error(uint32_t pos, const std::string& message) const {
  return invalid_argument(source_location(source_, pos, label_) + ": " + message);
}

Status Interpreter::located(uint32_t pos, const Status& s) const {
  if (s.ok() || s.message().rfind(label_ + ":", 0) == 0) return s;
  return Status(s.code(), source_location(source_, pos, label_) + ": " + s.message());
}

Status Interpreter::step(uint32_t pos) {
  if (++steps_ > limits_.max_steps)
    return Status(StatusCode::kOutOfRange, source_location(source_, pos, label_) + ": template exceeded its budget of " +
                                               std::to_string(limits_.max_steps) + " evaluation steps");
  return Status::Ok();
}

Status Interpreter::append(std::string* out, std::string_view text, uint32_t pos) const {
  if (out->size() + text.size() > limits_.max_output_bytes)
    return Status(StatusCode::kOutOfRange, source_location(source_, pos, label_) + ": rendered text exceeds " +
                                               std::to_string(limits_.max_output_bytes) + " bytes");
  out->append(text);
  return Status::Ok();
}

StatusOr<std::string> Interpreter::render(const NodeList& body, std::shared_ptr<Scope> globals) {
  steps_ = 0;
  call_depth_ = 0;
  eval_depth_ = 0;
  flow_ = Flow::kNone;
  std::string out;
  FRUGAL_RETURN_IF_ERROR(exec_block(body, globals, &out));
  if (flow_ != Flow::kNone) return error(0, "{% break %} or {% continue %} outside of a loop");
  return out;
}

StatusOr<Value> Interpreter::call(const Value& fn, ValueList& args, const std::shared_ptr<Scope>& scope, uint32_t pos) {
  CallContext ctx{this, scope};
  auto r = fn.call(args, ctx);
  if (!r.ok()) return located(pos, r.status());
  return r;
}

Status Interpreter::exec_block(const NodeList& body, const ScopePtr& scope, std::string* out) {
  for (const auto& n : body) {
    FRUGAL_RETURN_IF_ERROR(exec(*n, scope, out));
    if (flow_ != Flow::kNone) break;
  }
  return Status::Ok();
}

Status Interpreter::exec(const Node& n, const ScopePtr& scope, std::string* out) {
  FRUGAL_RETURN_IF_ERROR(step(n.pos));
  switch (n.kind) {
    case NodeKind::kText: return append(out, n.name, n.pos);
    case NodeKind::kComment: return Status::Ok();
    case NodeKind::kIf: {
      FRUGAL_ASSIGN_OR_RETURN(Value test, eval(*n.x, scope));
      return exec_block(test.truthy() ? n.body : n.alt, scope, out);
    }
    case NodeKind::kFor: return exec_for(n, scope, out);
    case NodeKind::kSet: return exec_set(n, scope);
    case NodeKind::kMacro: return exec_macro(n, scope);
    case NodeKind::kBreak: flow_ = Flow::kBreak; return Status::Ok();
    case NodeKind::kContinue: flow_ = Flow::kContinue; return Status::Ok();
    default: break;
  }
  Value v;
  if (n.kind == NodeKind::kCallBlock) {
    FRUGAL_ASSIGN_OR_RETURN(v, exec_call_block(n, scope));
  } else if (n.kind == NodeKind::kFilterBlock) {
    std::string body;
    FRUGAL_RETURN_IF_ERROR(exec_block(n.body, scope, &body));
    FRUGAL_ASSIGN_OR_RETURN(v, eval_filter(Value::string(std::move(body)), *n.x, scope));
  } else {
    FRUGAL_ASSIGN_OR_RETURN(v, eval(n, scope));
  }
  if (v.is_null() || v.is_undefined()) return Status::Ok();
  return append(out, v.is_string() ? v.as_string() : display_string(v), n.pos);
}

Status Interpreter::bind_loop_target(const Node& target, const Value& item, Scope* scope, uint32_t pos) {
  if (target.kind == NodeKind::kIdent) {
    scope->set(target.name, item);
    return Status::Ok();
  }
  for (size_t j = 0; j < target.list.size(); ++j) {
    if (target.list[j]->kind != NodeKind::kIdent) return error(pos, "Cannot unpack to a non-name loop variable");
    scope->set(target.list[j]->name, item.as_array()[j]);
  }
  return Status::Ok();
}

Status Interpreter::exec_for(const Node& n, const ScopePtr& env, std::string* out) {
  auto scope = std::make_shared<Scope>(env);
  const Node* test = nullptr;
  Value iterable;
  if (n.y->kind == NodeKind::kSelect) {
    FRUGAL_ASSIGN_OR_RETURN(iterable, eval(*n.y->x, scope));
    test = n.y->y.get();
  } else {
    FRUGAL_ASSIGN_OR_RETURN(iterable, eval(*n.y, scope));
  }
  ValueList all;
  if (iterable.is_array()) {
    all = iterable.as_array();
  } else if (iterable.is_object()) {
    for (const auto& e : iterable.as_map().entries()) all.push_back(Value::string(e.first));
  } else {
    return error(n.y->pos, std::string("Expected iterable or object type in for loop: got ") + iterable.type_name());
  }
  ValueList items;
  for (const Value& current : all) {
    if (n.x->kind == NodeKind::kTuple) {
      if (!current.is_array() || current.is_tuple())
        return error(n.x->pos, std::string("Cannot unpack non-iterable type: ") + current.type_name());
      if (current.as_array().size() != n.x->list.size())
        return error(n.x->pos, std::string("Too ") + (n.x->list.size() > current.as_array().size() ? "few" : "many") +
                                   " items to unpack");
    }
    if (test) {
      auto loop_scope_ptr = std::make_shared<Scope>(scope);
      FRUGAL_RETURN_IF_ERROR(bind_loop_target(*n.x, current, loop_scope_ptr.get(), n.pos));
      FRUGAL_ASSIGN_OR_RETURN(Value keep, eval(*test, loop_scope_ptr));
      if (!keep.truthy()) continue;
    }
    items.push_back(current);
  }
  bool no_iteration = true;
  int64_t count = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < count; ++i) {
    ValueMap loop;
    loop.set("index", Value::integer(i + 1));
    loop.set("index0", Value::integer(i));
    loop.set("revindex", Value::integer(count - i));
    loop.set("revindex0", Value::integer(count - i - 1));
    loop.set("first", Value::boolean(i == 0));
    loop.set("last", Value::boolean(i == count - 1));
    loop.set("length", Value::integer(count));
    loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value());
    loop.set("nextitem", i < count - 1 ? items[static_cast<size_t>(i + 1)] : Value());
    scope->set("loop", Value::object(std::move(loop)));
    FRUGAL_RETURN_IF_ERROR(bind_loop_target(*n.x, items[static_cast<size_t>(i)], scope.get(), n.pos));
    size_t mark = out->size();
    FRUGAL_RETURN_IF_ERROR(exec_block(n.body, scope, out));
    if (flow_ != Flow::kNone) {
      out->resize(mark);  // @huggingface/jinja drops the output of an iteration ended by break/continue
      Flow f = flow_;
      flow_ = Flow::kNone;
      if (f == Flow::kBreak) break;
      continue;
    }
    no_iteration = false;
  }
  if (no_iteration) return exec_block(n.alt, scope, out);
  return Status::Ok();
}

Status Interpreter::exec_set(const Node& n, const ScopePtr& scope) {
  Value rhs;
  if (n.y) {
    FRUGAL_ASSIGN_OR_RETURN(rhs, eval(*n.y, scope));
  } else {
    std::string body;
    FRUGAL_RETURN_IF_ERROR(exec_block(n.body, scope, &body));
    rhs = Value::string(std::move(body));
  }
  const Node& target = *n.x;
  if (target.kind == NodeKind::kIdent) {
    scope->set(target.name, std::move(rhs));
    return Status::Ok();
  }
  if (target.kind == NodeKind::kTuple) {
    if (!rhs.is_array()) return error(n.pos, std::string("Cannot unpack non-iterable type in set: ") + rhs.type_name());
    const ValueList& values = rhs.as_array();
    if (values.size() != target.list.size())
      return error(n.pos, std::string("Too ") + (target.list.size() > values.size() ? "few" : "many") +
                              " items to unpack in set");
    for (size_t i = 0; i < values.size(); ++i) {
      if (target.list[i]->kind != NodeKind::kIdent) return error(n.pos, "Cannot unpack to a non-name in set");
      scope->set(target.list[i]->name, values[i]);
    }
    return Status::Ok();
  }
  if (target.kind == NodeKind::kMember) {
    FRUGAL_ASSIGN_OR_RETURN(Value object, eval(*target.x, scope));
    if (object.kind() != Kind::kNamespace) return error(n.pos, "cannot assign attribute on non-namespace object");
    if (target.y->kind != NodeKind::kIdent) return error(n.pos, "Cannot assign to member with non-identifier property");
    object.mutable_map().set(target.y->name, std::move(rhs));
    return Status::Ok();
  }
  return error(n.pos, "invalid target of set");
}

Status Interpreter::bind_arguments(const std::string& display_name, const NodeList& params, bool uses_kwargs,
                                   bool uses_varargs, ValueList& args, const ScopePtr& scope, uint32_t pos) {
  ValueList positional = args;
  ValueMap kwargs;
  if (!positional.empty() && positional.back().is_kwargs()) {
    kwargs = positional.back().as_map();
    positional.pop_back();
  }
  std::vector<const Node*> pending;
  for (size_t i = 0; i < params.size(); ++i) {
    const Node& p = *params[i];
    Value value;
    bool given = i < positional.size();
    if (given) {
      value = positional[i];
    } else if (const Value* kw = kwargs.find(p.name)) {
      value = *kw;
      kwargs.erase(p.name);
      given = true;
    }
    if (!given && p.kind == NodeKind::kKwarg) pending.push_back(&p);
    scope->set(p.name, value);
  }
  if (uses_kwargs) {
    scope->set("kwargs", Value::object(kwargs));
  } else if (kwargs.size() > 0) {
    return error(pos, "macro " + display_name + " takes no keyword argument '" + kwargs.entries()[0].first + "'");
  }
  if (uses_varargs) {
    ValueList rest;
    for (size_t i = params.size(); i < positional.size(); ++i) rest.push_back(positional[i]);
    scope->set("varargs", Value::array(std::move(rest)));
  } else if (positional.size() > params.size()) {
    return error(pos, "macro " + display_name + " takes not more than " + std::to_string(params.size()) +
                          " argument(s)");
  }
  for (const Node* p : pending) {
    FRUGAL_ASSIGN_OR_RETURN(Value v, eval(*p->x, scope));
    scope->set(p->name, std::move(v));
  }
  return Status::Ok();
}

Status Interpreter::exec_macro(const Node& n, const ScopePtr& scope) {
  bool uses_kwargs = false, uses_varargs = false;
  for (const auto& c : n.body) find_special_names(*c, &uses_kwargs, &uses_varargs);
  const Node* node = &n;
  scope->set(n.name, Value::function(n.name, [this, node, uses_kwargs, uses_varargs](
                                                 ValueList& args, CallContext& ctx) -> StatusOr<Value> {
               if (call_depth_ >= limits_.max_call_depth)
                 return error(node->pos, "macro calls nested deeper than " + std::to_string(limits_.max_call_depth));
               DepthGuard guard(&call_depth_);
               auto macro_scope = std::make_shared<Scope>(ctx.scope);
               FRUGAL_RETURN_IF_ERROR(bind_arguments("'" + node->name + "'", node->list, uses_kwargs, uses_varargs,
                                                     args, macro_scope, node->pos));
               std::string out;
               FRUGAL_RETURN_IF_ERROR(exec_block(node->body, macro_scope, &out));
               return Value::string(std::move(out));
             }));
  return Status::Ok();
}

StatusOr<Value> Interpreter::exec_call_block(const Node& n, const ScopePtr& scope) {
  bool uses_kwargs = false, uses_varargs = false;
  for (const auto& c : n.body) find_special_names(*c, &uses_kwargs, &uses_varargs);
  const Node* node = &n;
  std::weak_ptr<Scope> weak_env = scope;
  Value caller = Value::function("caller", [this, node, weak_env, uses_kwargs, uses_varargs](
                                               ValueList& args, CallContext&) -> StatusOr<Value> {
    auto env = weak_env.lock();
    if (!env) return error(node->pos, "caller() used after its call block ended");
    auto block_scope = std::make_shared<Scope>(env);
    FRUGAL_RETURN_IF_ERROR(bind_arguments("None", node->list, uses_kwargs, uses_varargs, args, block_scope, node->pos));
    std::string out;
    FRUGAL_RETURN_IF_ERROR(exec_block(node->body, block_scope, &out));
    return Value::string(std::move(out));
  });
  const Node& call_node = *n.x;
  ValueList args;
  ValueMap kwargs;
  FRUGAL_RETURN_IF_ERROR(eval_arguments(call_node.list, scope, &args, &kwargs));
  args.push_back(Value::object(std::move(kwargs), /*kwargs=*/true));
  FRUGAL_ASSIGN_OR_RETURN(Value fn, eval(*call_node.x, scope));
  if (fn.kind() != Kind::kFunction)
    return error(n.pos, std::string("Cannot call something that is not a function: got ") + fn.type_name());
  auto call_env = std::make_shared<Scope>(scope);
  call_env->set("caller", caller);
  return call(fn, args, call_env, n.pos);
}

}  // namespace frugal::jinja
