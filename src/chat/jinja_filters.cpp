// Filters of the Jinja-subset interpreter, following @huggingface/jinja 0.5.11 type by type (see
// jinja_builtins.h for the list).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "chat/jinja_builtins.h"

namespace frugal::jinja {
namespace {

Status cannot_apply(const std::string& name, const Value& operand) {
  return invalid_argument("Cannot apply filter \"" + name + "\" to type: " + operand.type_name());
}
Status unknown(const char* type, const std::string& name) {
  return invalid_argument(std::string("Unknown ") + type + " filter: " + name);
}

// JavaScript parseInt(s, 10) / parseFloat(s): the longest numeric prefix after leading whitespace.
bool parse_int_prefix(const std::string& s, int64_t* out) {
  std::string t(trim_start(s));
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  size_t digits = i;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
  if (i == digits) return false;
  *out = std::strtoll(t.substr(0, i).c_str(), nullptr, 10);
  return true;
}
bool parse_float_prefix(const std::string& s, double* out) {
  std::string t(trim_start(s));
  if (t.rfind("Infinity", 0) == 0 || t.rfind("+Infinity", 0) == 0 || t.rfind("-Infinity", 0) == 0) {
    *out = t[0] == '-' ? -INFINITY : INFINITY;
    return true;
  }
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  size_t mantissa = i;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
  if (i < t.size() && t[i] == '.') ++i;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
  if (i == mantissa || (i == mantissa + 1 && t[mantissa] == '.')) return false;
  size_t e = i;
  if (e < t.size() && (t[e] == 'e' || t[e] == 'E')) {
    size_t j = e + 1;
    if (j < t.size() && (t[j] == '+' || t[j] == '-')) ++j;
    size_t exp_digits = j;
    while (j < t.size() && t[j] >= '0' && t[j] <= '9') ++j;
    if (j > exp_digits) i = j;
  }
  *out = std::strtod(t.substr(0, i).c_str(), nullptr);
  return true;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

int64_t word_count(const std::string& s) {
  int64_t n = 0;
  bool in_word = false;
  for (char c : s) {
    bool w = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
             static_cast<unsigned char>(c) >= 0x80;
    if (w && !in_word) ++n;
    in_word = w;
  }
  return n;
}

ValueList unique(const ValueList& items) {
  ValueList out;
  for (const Value& v : items) {
    bool seen = false;
    for (const Value& u : out) seen = seen || strict_equals(u, v);
    if (!seen) out.push_back(v);
  }
  return out;
}

StatusOr<ValueList> sorted(const ValueList& items, bool reverse, bool case_sensitive, const Value& attribute);

// A dotted attribute path ("a.b", "items.0") into objects and lists; undefined when missing.
Value attribute_path(const Value& item, const std::string& path) {
  Value v = item;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (v.is_map()) {
      const Value* found = v.as_map().find(part);
      v = found ? *found : Value();
    } else if (v.is_array()) {
      int64_t index = 0;
      char* end = nullptr;
      index = std::strtoll(part.c_str(), &end, 10);
      if (end == part.c_str() || index < 0 || index >= static_cast<int64_t>(v.as_array().size())) return Value();
      v = v.as_array()[static_cast<size_t>(index)];
    } else {
      return Value();
    }
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

StatusOr<ValueList> sorted(const ValueList& items, bool reverse, bool case_sensitive, const Value& attribute) {
  ValueList out = items;
  Status err;
  std::string path = attribute.is_null() ? "" : attribute.is_string() ? attribute.as_string()
                                                                     : std::to_string(attribute.as_int());
  auto key = [&](const Value& v) { return attribute.is_null() ? v : attribute_path(v, path); };
  std::stable_sort(out.begin(), out.end(), [&](const Value& a, const Value& b) {
    auto r = compare_values(key(a), key(b), case_sensitive);
    if (!r.ok()) {
      if (err.ok()) err = r.status();
      return false;
    }
    return reverse ? *r > 0 : *r < 0;
  });
  FRUGAL_RETURN_IF_ERROR(err);
  return out;
}

// Positional argument i, else keyword `key`, else `def`.
Value arg(const FilterArgs& a, size_t i, const char* key, Value def) {
  if (i < a.positional.size()) return a.positional[i];
  if (const Value* v = a.kwargs.find(key)) return *v;
  return def;
}

StatusOr<Value> tojson_call(const Value& operand, const FilterArgs& a) {
  JsonOptions o;
  Value indent = arg(a, SIZE_MAX, "indent", Value::null());
  if (indent.kind() != Kind::kInt && !indent.is_null()) return invalid_argument("If set, indent must be a number");
  o.indent = indent.is_null() ? 0 : static_cast<int>(std::clamp<int64_t>(indent.as_int(), 0, 64));
  Value ascii = arg(a, SIZE_MAX, "ensure_ascii", Value::boolean(false));
  Value sort = arg(a, SIZE_MAX, "sort_keys", Value::boolean(false));
  if (ascii.kind() != Kind::kBool) return invalid_argument("If set, ensure_ascii must be a boolean");
  if (sort.kind() != Kind::kBool) return invalid_argument("If set, sort_keys must be a boolean");
  o.ensure_ascii = ascii.as_bool();
  o.sort_keys = sort.as_bool();
  Value sep = arg(a, SIZE_MAX, "separators", Value::null());
  if (sep.is_array()) {
    const ValueList& s = sep.as_array();
    if (s.size() != 2 || !s[0].is_string() || !s[1].is_string())
      return invalid_argument("separators must be a tuple of two strings");
    o.has_separators = true;
    o.item_separator = s[0].as_string();
    o.key_separator = s[1].as_string();
  } else if (!sep.is_null()) {
    return invalid_argument("If set, separators must be a tuple of two strings");
  }
  FRUGAL_ASSIGN_OR_RETURN(std::string json, to_json(operand, o));
  return Value::string(std::move(json));
}

// selectattr/rejectattr(attr[, test[, value]]) and select/reject(test[, value]).
StatusOr<Value> select_items(const std::string& name, const Value& operand, const FilterArgs& a) {
  bool by_attr = name == "selectattr" || name == "rejectattr";
  bool keep = name == "selectattr" || name == "select";
  if (by_attr) {
    for (const Value& item : operand.as_array())
      if (!item.is_map()) return invalid_argument("`" + name + "` can only be applied to array of objects");
    if (!a.all_string_literals) return invalid_argument("arguments of `" + name + "` must be strings");
  }
  size_t first = by_attr ? 1 : 0;
  const Value* test = a.positional.size() > first ? &a.positional[first] : nullptr;
  const Value* expected = a.positional.size() > first + 1 ? &a.positional[first + 1] : nullptr;
  if (test && !test->is_string()) return invalid_argument("the test of `" + name + "` must be a string");
  ValueList out;
  for (const Value& item : operand.as_array()) {
    Value subject = item;
    bool result = false;
    if (by_attr) {
      const Value* found = a.positional.empty() ? nullptr : item.as_map().find(concat_string(a.positional[0]));
      if (found == nullptr) {
        if (!keep) out.push_back(item);
        continue;
      }
      subject = *found;
    }
    if (test) {
      FRUGAL_ASSIGN_OR_RETURN(result, run_test(test->as_string(), subject, expected ? expected : nullptr));
    } else {
      result = subject.truthy();
    }
    if (result == keep) out.push_back(item);
  }
  return Value::array(std::move(out));
}

StatusOr<Value> array_call(const std::string& name, const Value& operand, const FilterArgs& a) {
  if (name == "sort") {
    Value reverse = arg(a, 0, "reverse", Value::boolean(false));
    Value cs = arg(a, 1, "case_sensitive", Value::boolean(false));
    Value attribute = arg(a, 2, "attribute", Value::null());
    if (reverse.kind() != Kind::kBool) return invalid_argument("reverse must be a boolean");
    if (cs.kind() != Kind::kBool) return invalid_argument("case_sensitive must be a boolean");
    if (!attribute.is_string() && attribute.kind() != Kind::kInt && !attribute.is_null())
      return invalid_argument("attribute must be a string, integer, or null");
    FRUGAL_ASSIGN_OR_RETURN(ValueList out, sorted(operand.as_array(), reverse.as_bool(), cs.as_bool(), attribute));
    return Value::array(std::move(out));
  }
  if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject")
    return select_items(name, operand, a);
  if (name == "map") {
    const Value* attr = a.kwargs.find("attribute");
    if (attr == nullptr) return invalid_argument("`map` expressions without `attribute` set are not currently supported.");
    if (!attr->is_string()) return invalid_argument("attribute must be a string");
    const Value* def = a.kwargs.find("default");
    ValueList out;
    for (const Value& item : operand.as_array()) {
      if (!item.is_map()) return invalid_argument("items in map must be an object");
      Value v = attribute_path(item, attr->as_string());
      out.push_back(v.is_undefined() && def ? *def : v);
    }
    return Value::array(std::move(out));
  }
  return unknown("ArrayValue", name);
}

StatusOr<Value> string_call(const std::string& name, const Value& operand, const FilterArgs& a, CallContext& ctx) {
  if (name == "indent") {
    Value width = arg(a, 0, "width", Value::integer(4));
    if (width.kind() != Kind::kInt) return invalid_argument("width must be a number");
    bool first = arg(a, 1, "first", Value::boolean(false)).truthy();
    bool blank = arg(a, 2, "blank", Value::boolean(false)).truthy();
    std::string pad(static_cast<size_t>(std::clamp<int64_t>(width.as_int(), 0, 1024)), ' ');
    const std::string& s = operand.as_string();
    std::string out;
    size_t start = 0;
    for (size_t line = 0;; ++line) {
      size_t nl = s.find('\n', start);
      std::string text = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      if (!((!first && line == 0) || (!blank && text.empty()))) out += pad;
      out += text;
      if (nl == std::string::npos) break;
      out += '\n';
      start = nl + 1;
    }
    return Value::string(std::move(out));
  }
  if (name == "replace") {
    ValueList args = a.positional;
    args.push_back(Value::object(a.kwargs, /*kwargs=*/true));
    Value method = builtin_member(operand, "replace");
    return method.call(args, ctx);
  }
  return unknown("StringValue", name);
}

}  // namespace

StatusOr<Value> filter_plain(const std::string& name, const Value& operand) {
  if (name == "safe") return operand;
  if (name == "tojson") {
    FRUGAL_ASSIGN_OR_RETURN(std::string json, to_json(operand, JsonOptions{}));
    return Value::string(std::move(json));
  }
  switch (operand.kind()) {
    case Kind::kArray: {
      const ValueList& items = operand.as_array();
      if (name == "list") return operand;
      if (name == "first") return items.empty() ? Value() : items.front();
      if (name == "last") return items.empty() ? Value() : items.back();
      if (name == "length" || name == "count") return Value::integer(static_cast<int64_t>(items.size()));
      if (name == "reverse") return Value::array(ValueList(items.rbegin(), items.rend()));
      if (name == "sort") {
        FRUGAL_ASSIGN_OR_RETURN(ValueList out, sorted(items, false, false, Value::null()));
        return Value::array(std::move(out));
      }
      if (name == "join") {
        std::string out;
        for (const Value& v : items) out += join_item_string(v);
        return Value::string(std::move(out));
      }
      if (name == "string") return Value::string(display_string(operand));
      if (name == "unique") return Value::array(unique(items));
      return unknown("ArrayValue", name);
    }
    case Kind::kString: {
      const std::string& s = operand.as_string();
      if (name == "length" || name == "count") return Value::integer(static_cast<int64_t>(utf16_length(s)));
      if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
        ValueList none;
        CallContext ctx;
        return builtin_member(operand, name).call(none, ctx);
      }
      if (name == "trim") return Value::string(std::string(trim_end(trim_start(s))));
      if (name == "indent") {
        FilterArgs a;
        CallContext ctx;
        return string_call("indent", operand, a, ctx);
      }
      if (name == "join" || name == "string" || name == "safe") return operand;
      if (name == "int") {
        int64_t i = 0;
        return Value::integer(parse_int_prefix(s, &i) ? i : 0);
      }
      if (name == "float") {
        double d = 0;
        return Value::number(parse_float_prefix(s, &d) ? d : 0.0);
      }
      if (name == "escape" || name == "e") return Value::string(html_escape(s));
      if (name == "wordcount") return Value::integer(word_count(s));
      return unknown("StringValue", name);
    }
    case Kind::kInt:
    case Kind::kFloat: {
      bool is_int = operand.kind() == Kind::kInt;
      if (name == "abs") return is_int ? Value::integer(std::llabs(operand.as_int())) : Value::number(std::fabs(operand.as_float()));
      if (name == "int") return is_int ? operand : Value::integer(static_cast<int64_t>(std::floor(operand.as_float())));
      if (name == "float") return Value::number(operand.as_number());
      if (name == "string") return Value::string(display_string(operand));
      return unknown("NumericValue", name);
    }
    case Kind::kObject: {
      const ValueMap& m = operand.as_map();
      if (name == "length" || name == "count") return Value::integer(static_cast<int64_t>(m.size()));
      Value method = builtin_member(operand, name);
      if (method.kind() == Kind::kFunction) {
        ValueList none;
        CallContext ctx;
        return method.call(none, ctx);
      }
      return unknown("ObjectValue", name);
    }
    case Kind::kBool: {
      bool b = operand.as_bool();
      if (name == "bool") return operand;
      if (name == "int") return Value::integer(b ? 1 : 0);
      if (name == "float") return Value::number(b ? 1.0 : 0.0);
      if (name == "string") return Value::string(b ? "true" : "false");
      return unknown("BooleanValue", name);
    }
    default: return cannot_apply(name, operand);
  }
}

StatusOr<Value> filter_call(const std::string& name, const Value& operand, const FilterArgs& a, CallContext& ctx) {
  if (name == "tojson") return tojson_call(operand, a);
  if (name == "join") {
    ValueList items;
    if (operand.is_string()) {
      for (auto& c : code_points(operand.as_string())) items.push_back(Value::string(c));
    } else if (operand.is_array()) {
      items = operand.as_array();
    } else {
      return cannot_apply(name, operand);
    }
    Value sep = arg(a, 0, "separator", Value::string(""));
    if (!sep.is_string()) return invalid_argument("separator must be a string");
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) out += (i ? sep.as_string() : "") + join_item_string(items[i]);
    return Value::string(std::move(out));
  }
  if (name == "int" || name == "float") {
    bool is_int = name == "int";
    Value def = arg(a, 0, "default", is_int ? Value::integer(0) : Value::number(0.0));
    if (operand.is_string()) {
      int64_t i = 0;
      double d = 0;
      if (is_int) return parse_int_prefix(operand.as_string(), &i) ? Value::integer(i) : def;
      return parse_float_prefix(operand.as_string(), &d) ? Value::number(d) : def;
    }
    if (operand.is_number()) return operand;
    if (operand.kind() == Kind::kBool)
      return is_int ? Value::integer(operand.as_bool() ? 1 : 0) : Value::number(operand.as_bool() ? 1.0 : 0.0);
    return cannot_apply(name, operand);
  }
  if (name == "default" || name == "d") {
    Value def = a.positional.size() > 0 ? a.positional[0] : Value::string("");
    Value boolean = arg(a, 1, "boolean", Value::boolean(false));
    if (boolean.kind() != Kind::kBool) return invalid_argument("`default` filter flag must be a boolean");
    if (operand.is_undefined() || (boolean.as_bool() && !operand.truthy())) return def;
    return operand;
  }
  if (operand.is_array()) return array_call(name, operand, a);
  if (operand.is_string()) return string_call(name, operand, a, ctx);
  if (operand.is_object()) {
    Value method = builtin_member(operand, name);
    if (method.kind() != Kind::kFunction) return unknown("ObjectValue", name);
    ValueList args = a.positional;
    if (a.kwargs.size() > 0) args.push_back(Value::object(a.kwargs, /*kwargs=*/true));
    return method.call(args, ctx);
  }
  return cannot_apply(name, operand);
}

}  // namespace frugal::jinja
