// Tests, methods and globals of the Jinja-subset interpreter (filters are in jinja_filters.cpp).
#include <cmath>
#include <cstdio>
#include <ctime>

#include "chat/jinja_builtins.h"

namespace frugal::jinja {
namespace {

char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
bool is_word(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

std::string map_chars(std::string s, char (*f)(char)) {
  for (char& c : s) c = f(c);
  return s;
}

// JavaScript /\b\w/g uppercased (word characters are ASCII).
std::string title_case(std::string s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (is_word(s[i]) && (i == 0 || !is_word(s[i - 1]))) s[i] = ascii_upper(s[i]);
  return s;
}

Value fn(const char* name, NativeFn f) { return Value::function(name, std::move(f)); }

// "abc".startswith(x) / endswith(x): x a string or a list/tuple of strings.
Value affix_method(const std::string& s, bool start) {
  const char* name = start ? "startswith" : "endswith";
  return fn(name, [s, start, name](ValueList& args, CallContext&) -> StatusOr<Value> {
    if (args.empty()) return invalid_argument(std::string(name) + "() requires at least one argument");
    auto matches = [&](const std::string& p) {
      if (p.size() > s.size()) return false;
      return start ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0;
    };
    const Value& pattern = args[0];
    if (pattern.is_string()) return Value::boolean(matches(pattern.as_string()));
    if (pattern.is_array()) {
      for (const Value& item : pattern.as_array()) {
        if (!item.is_string()) return invalid_argument(std::string(name) + "() tuple elements must be strings");
        if (matches(item.as_string())) return Value::boolean(true);
      }
      return Value::boolean(false);
    }
    return invalid_argument(std::string(name) + "() argument must be a string or tuple of strings");
  });
}

StatusOr<Value> split(const std::string& s, ValueList& args) {
  Value sep = args.size() > 0 ? args[0] : Value::null();
  Value maxsplit = args.size() > 1 ? args[1] : Value::integer(-1);
  if (!sep.is_string() && !sep.is_null()) return invalid_argument("sep argument must be a string or null");
  if (maxsplit.kind() != Kind::kInt) return invalid_argument("maxsplit argument must be a number");
  int64_t max = maxsplit.as_int();
  ValueList out;
  if (sep.is_null()) {
    std::string_view text = trim_start(s);
    size_t i = 0;
    while (i < text.size()) {
      size_t start = i;  // skip whitespace to the next word
      while (start < text.size()) {
        size_t j = start;
        if (!is_js_space(next_code_point(text, &j))) break;
        start = j;
      }
      if (start >= text.size()) break;
      size_t end = start;
      while (end < text.size()) {
        size_t j = end;
        if (is_js_space(next_code_point(text, &j))) break;
        end = j;
      }
      if (max != -1 && static_cast<int64_t>(out.size()) >= max) {
        out.push_back(Value::string(std::string(text.substr(start))));
        break;
      }
      out.push_back(Value::string(std::string(text.substr(start, end - start))));
      i = end;
    }
    return Value::array(std::move(out));
  }
  const std::string& d = sep.as_string();
  if (d.empty()) return invalid_argument("empty separator");
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t at = s.find(d, start);
    if (at == std::string::npos) break;
    parts.push_back(s.substr(start, at - start));
    start = at + d.size();
  }
  parts.push_back(s.substr(start));
  if (max != -1 && static_cast<int64_t>(parts.size()) > max) {
    std::string rest;
    for (size_t k = static_cast<size_t>(max); k < parts.size(); ++k) rest += (k > static_cast<size_t>(max) ? d : "") + parts[k];
    parts.resize(static_cast<size_t>(max));
    parts.push_back(rest);
  }
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return Value::array(std::move(out));
}

StatusOr<Value> replace_method(const std::string& s, ValueList& args) {
  if (args.size() < 2) return invalid_argument("replace() requires at least two arguments");
  if (!args[0].is_string() || !args[1].is_string()) return invalid_argument("replace() arguments must be strings");
  Value count = Value::null();
  if (args.size() > 2) {
    if (args[2].is_kwargs()) {
      const Value* c = args[2].as_map().find("count");
      count = c ? *c : Value::null();
    } else {
      count = args[2];
    }
  }
  if (count.kind() != Kind::kInt && !count.is_null())
    return invalid_argument("replace() count argument must be a number or null");
  int64_t n = count.is_null() ? -1 : count.as_int();
  return Value::string(replace_all(s, args[0].as_string(), args[1].as_string(), n));
}

Value string_member(const std::string& s, const std::string& name) {
  auto unary = [&](std::string (*f)(const std::string&)) {
    return fn(name.c_str(), [s, f](ValueList&, CallContext&) -> StatusOr<Value> { return Value::string(f(s)); });
  };
  if (name == "length") return Value::integer(static_cast<int64_t>(utf16_length(s)));
  if (name == "upper") return unary([](const std::string& x) { return map_chars(x, ascii_upper); });
  if (name == "lower") return unary([](const std::string& x) { return map_chars(x, ascii_lower); });
  if (name == "strip") return unary([](const std::string& x) { return std::string(trim_end(trim_start(x))); });
  if (name == "lstrip") return unary([](const std::string& x) { return std::string(trim_start(x)); });
  if (name == "rstrip") return unary([](const std::string& x) { return std::string(trim_end(x)); });
  if (name == "title") return unary([](const std::string& x) { return title_case(x); });
  if (name == "capitalize")
    return unary([](const std::string& x) { return x.empty() ? x : ascii_upper(x[0]) + x.substr(1); });
  if (name == "startswith" || name == "endswith") return affix_method(s, name == "startswith");
  if (name == "split") return fn("split", [s](ValueList& args, CallContext&) { return split(s, args); });
  if (name == "replace") return fn("replace", [s](ValueList& args, CallContext&) { return replace_method(s, args); });
  return Value();
}

ValueList object_items(const ValueMap& m) {
  ValueList out;
  for (const auto& [k, v] : m.entries()) out.push_back(Value::array({Value::string(k), v}));
  return out;
}

StatusOr<Value> dictsort(const ValueMap& m, ValueList& args) {
  ValueMap kwargs;
  ValueList positional;
  for (const Value& a : args) {
    if (a.is_kwargs()) {
      kwargs = a.as_map();
    } else {
      positional.push_back(a);
    }
  }
  auto arg = [&](size_t i, const char* key, Value def) {
    if (i < positional.size()) return positional[i];
    const Value* v = kwargs.find(key);
    return v ? *v : def;
  };
  Value case_sensitive = arg(0, "case_sensitive", Value::boolean(false));
  Value by = arg(1, "by", Value::string("key"));
  Value reverse = arg(2, "reverse", Value::boolean(false));
  if (case_sensitive.kind() != Kind::kBool) return invalid_argument("case_sensitive must be a boolean");
  if (!by.is_string()) return invalid_argument("by must be a string");
  if (by.as_string() != "key" && by.as_string() != "value") return invalid_argument("by must be either 'key' or 'value'");
  if (reverse.kind() != Kind::kBool) return invalid_argument("reverse must be a boolean");
  ValueList items = object_items(m);
  size_t index = by.as_string() == "key" ? 0 : 1;
  Status err;
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    auto r = compare_values(a.as_array()[index], b.as_array()[index], case_sensitive.as_bool());
    if (!r.ok()) {
      if (err.ok()) err = r.status();
      return false;
    }
    return reverse.as_bool() ? *r > 0 : *r < 0;
  });
  FRUGAL_RETURN_IF_ERROR(err);
  return Value::array(std::move(items));
}

Value object_member(const Value& object, const std::string& name) {
  Value self = object;  // shared reference
  if (name == "get")
    return fn("get", [self](ValueList& args, CallContext&) -> StatusOr<Value> {
      Value key = args.size() > 0 ? args[0] : Value();
      if (!key.is_string()) return invalid_argument(std::string("Object key must be a string: got ") + key.type_name());
      if (const Value* v = self.as_map().find(key.as_string())) return *v;
      return args.size() > 1 ? args[1] : Value::null();
    });
  if (name == "items")
    return fn("items", [self](ValueList&, CallContext&) -> StatusOr<Value> {
      return Value::array(object_items(self.as_map()));
    });
  if (name == "keys")
    return fn("keys", [self](ValueList&, CallContext&) -> StatusOr<Value> {
      ValueList out;
      for (const auto& e : self.as_map().entries()) out.push_back(Value::string(e.first));
      return Value::array(std::move(out));
    });
  if (name == "values")
    return fn("values", [self](ValueList&, CallContext&) -> StatusOr<Value> {
      ValueList out;
      for (const auto& e : self.as_map().entries()) out.push_back(e.second);
      return Value::array(std::move(out));
    });
  if (name == "dictsort")
    return fn("dictsort", [self](ValueList& args, CallContext&) { return dictsort(self.as_map(), args); });
  return Value();
}

StatusOr<Value> namespace_fn(ValueList& args, CallContext&) {
  ValueList positional = args;
  ValueMap kwargs;
  if (!positional.empty() && positional.back().is_kwargs()) {
    kwargs = positional.back().as_map();
    positional.pop_back();
  }
  if (positional.size() > 1)
    return invalid_argument("namespace expected at most 1 argument, got " + std::to_string(positional.size()));
  ValueMap entries;
  if (positional.size() == 1) {
    const Value& source = positional[0];
    if (source.is_object()) {
      for (const auto& [k, v] : source.as_map().entries()) entries.set(k, v);
    } else if (source.is_array()) {
      for (const Value& pair : source.as_array()) {
        ValueList kv;
        if (pair.is_array()) kv = pair.as_array();
        if (pair.is_string())
          for (auto& c : code_points(pair.as_string())) kv.push_back(Value::string(c));
        if (kv.size() != 2) return invalid_argument("namespace expected an object or an iterable of [key, value] pairs");
        if (!kv[0].is_string()) return invalid_argument("namespace keys must be strings");
        entries.set(kv[0].as_string(), kv[1]);
      }
    } else {
      return invalid_argument(std::string("'") + source.type_name() + "' object is not iterable");
    }
  }
  for (const auto& [k, v] : kwargs.entries()) entries.set(k, v);
  return Value::ns(std::move(entries));
}

StatusOr<Value> range_fn(ValueList& args, CallContext& ctx) {
  if (args.empty() || args.size() > 3) return invalid_argument("range() expects 1 to 3 arguments");
  for (const Value& a : args)
    if (!a.is_number()) return invalid_argument(std::string("range() arguments must be numbers, got ") + a.type_name());
  double start = 0, stop = args[0].as_number(), step = 1;
  if (args.size() >= 2) {
    start = args[0].as_number();
    stop = args[1].as_number();
  }
  if (args.size() == 3) step = args[2].as_number();
  if (step == 0) return invalid_argument("range() step must not be zero");
  if (std::fabs((stop - start) / step) > 1e7) return out_of_range("range() is too long");
  ValueList out;
  for (double i = start; step > 0 ? i < stop : i > stop; i += step)
    out.push_back(std::floor(i) == i ? Value::integer(static_cast<int64_t>(i)) : Value::number(i));
  (void)ctx;
  return Value::array(std::move(out));
}

}  // namespace

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  if (count == 0) return s;
  int64_t remaining = count < 0 ? INT64_MAX : count;
  std::string out;
  if (from.empty()) {  // an insertion at every code point boundary, the end included
    size_t i = 0;
    while (true) {
      if (remaining > 0) {
        out += to;
        --remaining;
      }
      if (i >= s.size()) break;
      size_t start = i;
      next_code_point(s, &i);
      out.append(s, start, i - start);
    }
    return out;
  }
  size_t start = 0;
  while (remaining > 0) {
    size_t at = s.find(from, start);
    if (at == std::string::npos) break;
    out.append(s, start, at - start);
    out += to;
    start = at + from.size();
    --remaining;
  }
  out.append(s, start, std::string::npos);
  return out;
}

std::string strftime_utc(const std::string& format, int64_t unix_seconds) {
  static const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                  "July",    "August",   "September", "October", "November", "December"};
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  auto pad2 = [](int v) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%02d", v);
    return std::string(buf);
  };
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      out += format[i];
      continue;
    }
    char d = format[i + 1];
    switch (d) {
      case 'Y': out += std::to_string(tm.tm_year + 1900); break;
      case 'm': out += pad2(tm.tm_mon + 1); break;
      case 'd': out += pad2(tm.tm_mday); break;
      case 'b': out += std::string(kMonths[tm.tm_mon]).substr(0, 3); break;
      case 'B': out += kMonths[tm.tm_mon]; break;
      case 'H': out += pad2(tm.tm_hour); break;
      case 'M': out += pad2(tm.tm_min); break;
      case '%': out += '%'; break;
      default: out += format.substr(i, 2);
    }
    ++i;
  }
  return out;
}

StatusOr<bool> run_test(const std::string& name, const Value& a, const Value* b) {
  Kind k = a.kind();
  if (name == "defined") return !a.is_undefined();
  if (name == "undefined") return a.is_undefined();
  if (name == "none") return a.is_null();
  if (name == "boolean") return k == Kind::kBool;
  if (name == "true") return k == Kind::kBool && a.as_bool();
  if (name == "false") return k == Kind::kBool && !a.as_bool();
  if (name == "string") return a.is_string();
  if (name == "number") return a.is_number();
  if (name == "integer") return k == Kind::kInt;
  if (name == "iterable") return (a.is_array() && !a.is_tuple()) || a.is_string();
  if (name == "sequence") return a.is_array() || a.is_object() || a.is_string();
  if (name == "mapping") return a.is_object();
  if (name == "callable") return k == Kind::kFunction;
  if (name == "odd" || name == "even") {
    if (k != Kind::kInt) return invalid_argument("cannot " + name + " on " + a.type_name());
    bool odd = a.as_int() % 2 != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "lower" || name == "upper") {
    if (!a.is_string()) return false;
    return a.as_string() == map_chars(a.as_string(), name == "lower" ? ascii_lower : ascii_upper);
  }
  if (name == "equalto" || name == "eq") {
    if (b == nullptr) return invalid_argument("test '" + name + "' needs an argument");
    return strict_equals(a, *b);
  }
  return invalid_argument("unknown test '" + name + "'");
}

Value builtin_member(const Value& object, const std::string& name) {
  if (object.is_string()) return string_member(object.as_string(), name);
  if (object.is_object()) return object_member(object, name);
  if (object.is_array() && name == "length") return Value::integer(static_cast<int64_t>(object.as_array().size()));
  return Value();
}

StatusOr<int> compare_values(const Value& a, const Value& b, bool case_sensitive) {
  auto mismatch = [&]() {
    return invalid_argument(std::string("Cannot compare ") + a.type_name() + " with " + b.type_name());
  };
  if (a.is_null() && b.is_null()) return 0;
  if (a.is_null() || b.is_null()) return mismatch();
  if (a.is_undefined() && b.is_undefined()) return 0;
  if (a.is_undefined() || b.is_undefined()) return mismatch();
  auto numeric = [](const Value& v, double* out) {
    if (v.is_number()) *out = v.as_number();
    else if (v.kind() == Kind::kBool) *out = v.as_bool() ? 1 : 0;
    else return false;
    return true;
  };
  double x, y;
  if (numeric(a, &x) && numeric(b, &y)) return x < y ? -1 : x > y ? 1 : 0;
  if (std::string(a.type_name()) != b.type_name())
    return invalid_argument(std::string("Cannot compare different types: ") + a.type_name() + " and " + b.type_name());
  if (!a.is_string()) return invalid_argument(std::string("Cannot compare type: ") + a.type_name());
  std::string s = a.as_string(), t = b.as_string();
  if (!case_sensitive) {
    s = map_chars(s, ascii_lower);
    t = map_chars(t, ascii_lower);
  }
  return s < t ? -1 : s > t ? 1 : 0;
}

void install_globals(Scope* scope, int64_t now_unix) {
  scope->set("true", Value::boolean(true));
  scope->set("false", Value::boolean(false));
  scope->set("none", Value::null());
  scope->set("True", Value::boolean(true));
  scope->set("False", Value::boolean(false));
  scope->set("None", Value::null());
  scope->set("raise_exception", fn("raise_exception", [](ValueList& args, CallContext&) -> StatusOr<Value> {
               std::string message = args.empty() ? "" : concat_string(args[0]);
               return invalid_argument("raise_exception: " + message);
             }));
  scope->set("range", fn("range", range_fn));
  scope->set("namespace", fn("namespace", namespace_fn));
  scope->set("strftime_now", fn("strftime_now", [now_unix](ValueList& args, CallContext&) -> StatusOr<Value> {
               if (args.empty() || !args[0].is_string()) return invalid_argument("strftime_now() expects a format string");
               return Value::string(strftime_utc(args[0].as_string(), now_unix));
             }));
}

}  // namespace frugal::jinja
