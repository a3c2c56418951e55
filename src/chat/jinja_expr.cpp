// Expression evaluation of the Jinja-subset interpreter (statements are in jinja_eval.cpp).
#include <cmath>

#include "chat/jinja_builtins.h"
#include "chat/jinja_eval.h"

namespace frugal::jinja {
namespace {

constexpr int kMaxEvalDepth = 400;  // nested expression evaluation (C++ stack), macro recursion included

struct DepthGuard {
  explicit DepthGuard(int* d) : d_(d) { ++*d_; }
  ~DepthGuard() { --*d_; }
  int* d_;
};

bool numeric_like(const Value& v) { return v.is_number() || v.kind() == Kind::kBool; }
double numeric_value(const Value& v) { return v.kind() == Kind::kBool ? (v.as_bool() ? 1 : 0) : v.as_number(); }

// Python slicing as @huggingface/jinja's slice() computes it (a zero step yields nothing).
template <typename T>
std::vector<T> py_slice(const std::vector<T>& a, const Value& start_v, const Value& stop_v, const Value& step_v) {
  int64_t n = static_cast<int64_t>(a.size());
  int64_t step = step_v.is_undefined() ? 1 : step_v.as_int();
  int64_t dir = step > 0 ? 1 : step < 0 ? -1 : 0;
  int64_t start, stop;
  if (dir >= 0) {
    start = start_v.is_undefined() ? 0 : start_v.as_int();
    stop = stop_v.is_undefined() ? n : stop_v.as_int();
    start = start < 0 ? std::max<int64_t>(n + start, 0) : std::min(start, n);
    stop = stop < 0 ? std::max<int64_t>(n + stop, 0) : std::min(stop, n);
  } else {
    start = start_v.is_undefined() ? n - 1 : start_v.as_int();
    stop = stop_v.is_undefined() ? -1 : stop_v.as_int();
    start = start < 0 ? std::max<int64_t>(n + start, -1) : std::min(start, n - 1);
    stop = stop < -1 ? std::max<int64_t>(n + stop, -1) : std::min(stop, n - 1);
  }
  std::vector<T> out;
  if (dir == 0) return out;
  for (int64_t i = start; dir * i < dir * stop; i += step) out.push_back(a[static_cast<size_t>(i)]);
  return out;
}

}  // namespace

StatusOr<Value> Interpreter::eval(const Node& n, const ScopePtr& scope) {
  FRUGAL_RETURN_IF_ERROR(step(n.pos));
  DepthGuard guard(&eval_depth_);
  if (eval_depth_ > kMaxEvalDepth) return error(n.pos, "expression evaluation nested too deeply");
  switch (n.kind) {
    case NodeKind::kInt: return Value::integer(n.int_value);
    case NodeKind::kFloat: return Value::number(n.float_value);
    case NodeKind::kString:
    case NodeKind::kText: return Value::string(n.name);
    case NodeKind::kIdent: return scope->lookup(n.name);
    case NodeKind::kArray:
    case NodeKind::kTuple: {
      ValueList items;
      for (const auto& e : n.list) {
        FRUGAL_ASSIGN_OR_RETURN(Value v, eval(*e, scope));
        items.push_back(std::move(v));
      }
      return Value::array(std::move(items), n.kind == NodeKind::kTuple);
    }
    case NodeKind::kObject: {
      ValueMap map;
      for (const auto& [k, v] : n.pairs) {
        FRUGAL_ASSIGN_OR_RETURN(Value key, eval(*k, scope));
        if (!key.is_string()) return error(k->pos, std::string("Object keys must be strings: got ") + key.type_name());
        FRUGAL_ASSIGN_OR_RETURN(Value value, eval(*v, scope));
        map.set(key.as_string(), std::move(value));
      }
      return Value::object(std::move(map));
    }
    case NodeKind::kMember: return eval_member(n, scope);
    case NodeKind::kCall: return eval_call(n, scope);
    case NodeKind::kUnary: return eval_unary(n, scope);
    case NodeKind::kBinary: return eval_binary(n, scope);
    case NodeKind::kFilter: {
      FRUGAL_ASSIGN_OR_RETURN(Value operand, eval(*n.x, scope));
      return eval_filter(operand, *n.y, scope);
    }
    case NodeKind::kTest: return eval_test(n, scope);
    case NodeKind::kSelect: {
      FRUGAL_ASSIGN_OR_RETURN(Value cond, eval(*n.y, scope));
      if (!cond.truthy()) return Value();
      return eval(*n.x, scope);
    }
    case NodeKind::kTernary: {
      FRUGAL_ASSIGN_OR_RETURN(Value cond, eval(*n.x, scope));
      return eval(cond.truthy() ? *n.y : *n.z, scope);
    }
    default: return error(n.pos, "this construct is not allowed in an expression");
  }
}

StatusOr<Value> Interpreter::eval_binary(const Node& n, const ScopePtr& scope) {
  const std::string& op = n.name;
  FRUGAL_ASSIGN_OR_RETURN(Value left, eval(*n.x, scope));
  if (op == "and") return left.truthy() ? eval(*n.y, scope) : StatusOr<Value>(left);
  if (op == "or") return left.truthy() ? StatusOr<Value>(left) : eval(*n.y, scope);
  FRUGAL_ASSIGN_OR_RETURN(Value right, eval(*n.y, scope));
  if (op == "==") return Value::boolean(loose_equals(left, right));
  if (op == "!=") return Value::boolean(!loose_equals(left, right));
  bool membership = op == "in" || op == "not in";
  if (left.is_undefined() || right.is_undefined()) {
    if (right.is_undefined() && membership) return Value::boolean(op == "not in");
    return error(n.pos, "Cannot perform operation " + op + " on undefined values");
  }
  if (left.is_null() || right.is_null()) return error(n.pos, "Cannot perform operation on null values");
  if (op == "~") return Value::string(concat_string(left) + concat_string(right));
  if (op == "**" && numeric_like(left) && numeric_like(right)) {
    double a = numeric_value(left), b = numeric_value(right);
    if (a == 0 && b < 0) return error(n.pos, "0.0 cannot be raised to a negative power");
    double r = std::pow(a, b);
    if (!std::isfinite(r)) return error(n.pos, "Exponentiation result is not a finite real number");
    bool is_float = left.kind() == Kind::kFloat || right.kind() == Kind::kFloat || b < 0;
    return is_float ? Value::number(r) : Value::integer(static_cast<int64_t>(r));
  }
  if (left.is_number() && right.is_number()) {
    bool is_float = left.kind() == Kind::kFloat || right.kind() == Kind::kFloat;
    double a = left.as_number(), b = right.as_number();
    if (op == "+" || op == "-" || op == "*") {
      if (is_float) return Value::number(op == "+" ? a + b : op == "-" ? a - b : a * b);
      int64_t x = left.as_int(), y = right.as_int(), r = 0;
      bool overflow = op == "+" ? __builtin_add_overflow(x, y, &r)
                      : op == "-" ? __builtin_sub_overflow(x, y, &r) : __builtin_mul_overflow(x, y, &r);
      if (overflow) return error(n.pos, "integer overflow in '" + op + "'");
      return Value::integer(r);
    }
    if (op == "/") return Value::number(a / b);
    if (op == "//" || op == "%") {
      if (!is_float && right.as_int() == 0) return error(n.pos, "integer division or modulo by zero");
      if (op == "//") return is_float ? Value::number(std::floor(a / b)) : Value::integer(static_cast<int64_t>(std::floor(a / b)));
      return is_float ? Value::number(std::fmod(a, b)) : Value::integer(left.as_int() % right.as_int());
    }
    if (op == "<") return Value::boolean(a < b);
    if (op == ">") return Value::boolean(a > b);
    if (op == "<=") return Value::boolean(a <= b);
    if (op == ">=") return Value::boolean(a >= b);
  } else if (left.is_array() && right.is_array()) {
    if (op == "+") {
      ValueList items = left.as_array();
      items.insert(items.end(), right.as_array().begin(), right.as_array().end());
      return Value::array(std::move(items));
    }
  } else if (right.is_array() && membership) {
    bool member = false;
    for (const Value& item : right.as_array()) member = member || strict_equals(item, left);
    return Value::boolean(member == (op == "in"));
  }
  if ((left.is_string() || right.is_string()) && op == "+")
    return Value::string(concat_string(left) + concat_string(right));
  if (left.is_string() && right.is_string() && membership)
    return Value::boolean((right.as_string().find(left.as_string()) != std::string::npos) == (op == "in"));
  if (left.is_string() && right.is_object() && membership)
    return Value::boolean((right.as_map().find(left.as_string()) != nullptr) == (op == "in"));
  return error(n.pos, "Unknown operator \"" + op + "\" between " + left.type_name() + " and " + right.type_name());
}

StatusOr<Value> Interpreter::eval_unary(const Node& n, const ScopePtr& scope) {
  FRUGAL_ASSIGN_OR_RETURN(Value arg, eval(*n.x, scope));
  if (n.name == "not") return Value::boolean(!arg.truthy());
  int sign = n.name == "-" ? -1 : 1;
  if (arg.kind() == Kind::kFloat) return Value::number(sign * arg.as_float());
  if (arg.kind() == Kind::kInt) return Value::integer(sign * arg.as_int());
  if (arg.kind() == Kind::kBool) return Value::integer(sign * (arg.as_bool() ? 1 : 0));
  return error(n.pos, "Unknown operator \"" + n.name + "\" for " + arg.type_name());
}

StatusOr<Value> Interpreter::eval_member(const Node& n, const ScopePtr& scope) {
  FRUGAL_ASSIGN_OR_RETURN(Value object, eval(*n.x, scope));
  Value property;
  if (n.flag) {
    if (n.y->kind == NodeKind::kSlice) return eval_slice(object, *n.y, scope);
    FRUGAL_ASSIGN_OR_RETURN(property, eval(*n.y, scope));
  } else if (n.y->kind == NodeKind::kInt) {
    property = Value::integer(n.y->int_value);
  } else {
    property = Value::string(n.y->name);
  }
  auto non_string = [&](const char* what) {
    return error(n.pos, std::string("Cannot access property with ") + what + ": got " + property.type_name());
  };
  if (object.is_map()) {
    if (!property.is_string()) return non_string("non-string");
    if (const Value* v = object.as_map().find(property.as_string())) return *v;
    return object.is_object() ? builtin_member(object, property.as_string()) : Value();
  }
  if (object.is_array() || object.is_string()) {
    if (property.kind() == Kind::kInt) {
      int64_t i = property.as_int();
      if (object.is_array()) {
        int64_t size = static_cast<int64_t>(object.as_array().size());
        if (i < 0) i += size;
        return i >= 0 && i < size ? object.as_array()[static_cast<size_t>(i)] : Value();
      }
      std::vector<std::string> chars = code_points(object.as_string());
      int64_t size = static_cast<int64_t>(chars.size());
      if (i < 0) i += size;
      return i >= 0 && i < size ? Value::string(chars[static_cast<size_t>(i)]) : Value();
    }
    if (property.is_string()) return builtin_member(object, property.as_string());
    return non_string("non-string/non-number");
  }
  if (!property.is_string()) return non_string("non-string");
  return Value();
}

StatusOr<Value> Interpreter::eval_slice(const Value& object, const Node& slice, const ScopePtr& scope) {
  if (!object.is_array() && !object.is_string()) return error(slice.pos, "Slice object must be an array or string");
  Value parts[3];
  const Node* nodes[3] = {slice.x.get(), slice.y.get(), slice.z.get()};
  static const char* kNames[3] = {"start", "stop", "step"};
  for (int i = 0; i < 3; ++i) {
    if (nodes[i] == nullptr) continue;
    FRUGAL_ASSIGN_OR_RETURN(parts[i], eval(*nodes[i], scope));
    if (parts[i].kind() != Kind::kInt && !parts[i].is_undefined())
      return error(slice.pos, std::string("Slice ") + kNames[i] + " must be numeric or undefined");
  }
  if (object.is_array()) return Value::array(py_slice(object.as_array(), parts[0], parts[1], parts[2]));
  std::string out;
  for (const auto& c : py_slice(code_points(object.as_string()), parts[0], parts[1], parts[2])) out += c;
  return Value::string(std::move(out));
}

Status Interpreter::eval_arguments(const NodeList& args, const ScopePtr& scope, ValueList* positional,
                                   ValueMap* kwargs) {
  for (const auto& a : args) {  // every positional argument before any keyword argument, as Python does
    if (a->kind == NodeKind::kKwarg || a->kind == NodeKind::kKwSpread) continue;
    if (a->kind == NodeKind::kSpread) {
      FRUGAL_ASSIGN_OR_RETURN(Value v, eval(*a->x, scope));
      if (!v.is_array()) return error(a->pos, std::string("Cannot unpack non-iterable type: ") + v.type_name());
      positional->insert(positional->end(), v.as_array().begin(), v.as_array().end());
      continue;
    }
    FRUGAL_ASSIGN_OR_RETURN(Value v, eval(*a, scope));
    positional->push_back(std::move(v));
  }
  auto add = [&](const std::string& key, Value v, uint32_t pos) -> Status {
    if (kwargs->find(key)) return error(pos, "Got multiple values for keyword argument '" + key + "'");
    kwargs->set(key, std::move(v));
    return Status::Ok();
  };
  for (const auto& a : args) {
    if (a->kind == NodeKind::kKwarg) {
      FRUGAL_ASSIGN_OR_RETURN(Value v, eval(*a->x, scope));
      FRUGAL_RETURN_IF_ERROR(add(a->name, std::move(v), a->pos));
    } else if (a->kind == NodeKind::kKwSpread) {
      FRUGAL_ASSIGN_OR_RETURN(Value v, eval(*a->x, scope));
      if (!v.is_object()) return error(a->pos, std::string("Argument after ** must be a mapping, not ") + v.type_name());
      for (const auto& [k, item] : v.as_map().entries()) FRUGAL_RETURN_IF_ERROR(add(k, item, a->pos));
    }
  }
  return Status::Ok();
}

StatusOr<Value> Interpreter::eval_call(const Node& n, const ScopePtr& scope) {
  ValueList args;
  ValueMap kwargs;
  FRUGAL_RETURN_IF_ERROR(eval_arguments(n.list, scope, &args, &kwargs));
  if (kwargs.size() > 0) args.push_back(Value::object(std::move(kwargs), /*kwargs=*/true));
  FRUGAL_ASSIGN_OR_RETURN(Value fn, eval(*n.x, scope));
  if (fn.kind() != Kind::kFunction)
    return error(n.pos, std::string("Cannot call something that is not a function: got ") + fn.type_name());
  return call(fn, args, scope, n.pos);
}

StatusOr<Value> Interpreter::eval_filter(const Value& operand, const Node& filter, const ScopePtr& scope) {
  if (filter.kind == NodeKind::kIdent) {
    auto r = filter_plain(filter.name, operand);
    if (!r.ok()) return located(filter.pos, r.status());
    return r;
  }
  FilterArgs args;
  FRUGAL_RETURN_IF_ERROR(eval_arguments(filter.list, scope, &args.positional, &args.kwargs));
  args.all_string_literals = true;
  for (const auto& a : filter.list) args.all_string_literals = args.all_string_literals && a->kind == NodeKind::kString;
  CallContext ctx{this, scope};
  auto r = filter_call(filter.x->name, operand, args, ctx);
  if (!r.ok()) return located(filter.pos, r.status());
  return r;
}

StatusOr<Value> Interpreter::eval_test(const Node& n, const ScopePtr& scope) {
  FRUGAL_ASSIGN_OR_RETURN(Value operand, eval(*n.x, scope));
  auto r = run_test(n.name, operand, nullptr);
  if (!r.ok()) return located(n.pos, r.status());
  return Value::boolean(*r != n.flag);
}

}  // namespace frugal::jinja
