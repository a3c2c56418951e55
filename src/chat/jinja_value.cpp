#include "chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace frugal::jinja {

// ---------------------------------------------------------------------------------------------- ValueMap

const Value* ValueMap::find(std::string_view key) const {
  auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

void ValueMap::set(const std::string& key, Value value) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    entries_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(key, entries_.size());
  entries_.emplace_back(key, std::move(value));
}

bool ValueMap::erase(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(it->second));
  index_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
  return true;
}

// ---------------------------------------------------------------------------------------------- Value

Value Value::null() {
  Value v;
  v.kind_ = Kind::kNull;
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}
Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}
Value Value::number(double f) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.f_ = f;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.s_ = std::make_shared<const std::string>(std::move(s));
  return v;
}
Value Value::array(ValueList items, bool tuple) {
  Value v;
  v.kind_ = Kind::kArray;
  v.flag_ = tuple;
  v.a_ = std::make_shared<const ValueList>(std::move(items));
  return v;
}
Value Value::object(ValueMap map, bool kwargs) {
  Value v;
  v.kind_ = Kind::kObject;
  v.flag_ = kwargs;
  v.m_ = std::make_shared<ValueMap>(std::move(map));
  return v;
}
Value Value::ns(ValueMap map) {
  Value v = object(std::move(map));
  v.kind_ = Kind::kNamespace;
  return v;
}
Value Value::function(std::string name, NativeFn fn) {
  Value v;
  v.kind_ = Kind::kFunction;
  v.fn_ = std::make_shared<const Function>(Function{std::move(name), std::move(fn)});
  return v;
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNull: return false;
    case Kind::kBool: return b_;
    case Kind::kInt: return i_ != 0;
    case Kind::kFloat: return f_ != 0 && !std::isnan(f_);
    case Kind::kString: return !s_->empty();
    case Kind::kArray: return !a_->empty();
    case Kind::kObject: return m_->size() > 0;
    case Kind::kNamespace:
    case Kind::kFunction: return true;
  }
  return false;
}

const char* Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined: return "UndefinedValue";
    case Kind::kNull: return "NullValue";
    case Kind::kBool: return "BooleanValue";
    case Kind::kInt: return "IntegerValue";
    case Kind::kFloat: return "FloatValue";
    case Kind::kString: return "StringValue";
    case Kind::kArray: return flag_ ? "TupleValue" : "ArrayValue";
    case Kind::kObject: return flag_ ? "KeywordArgumentsValue" : "ObjectValue";
    case Kind::kNamespace: return "NamespaceValue";
    case Kind::kFunction: return "FunctionValue";
  }
  return "?";
}

const void* Value::identity() const {
  switch (kind_) {
    case Kind::kArray: return a_.get();
    case Kind::kObject:
    case Kind::kNamespace: return m_.get();
    case Kind::kFunction: return fn_.get();
    default: return nullptr;
  }
}

// ---------------------------------------------------------------------------------------------- numbers

std::string js_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return "0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, r.ptr);  // [-]d[.ddd]e[+-]xx, shortest round-trip digits
  std::string out;
  size_t p = 0;
  if (sci[0] == '-') {
    out = "-";
    p = 1;
  }
  size_t e = sci.find('e');
  std::string digits;
  for (size_t i = p; i < e; ++i)
    if (sci[i] != '.') digits += sci[i];
  int exponent = std::atoi(sci.c_str() + e + 1);
  int k = static_cast<int>(digits.size());
  int n = exponent + 1;  // position of the decimal point relative to the digits
  if (k <= n && n <= 21) {
    out += digits + std::string(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<size_t>(n)) + "." + digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0." + std::string(static_cast<size_t>(-n), '0') + digits;
  } else {
    out += digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    out += (n - 1 >= 0 ? "e+" : "e-") + std::to_string(std::abs(n - 1));
  }
  return out;
}

static std::string float_display(double f) {
  if (f == 0 && std::signbit(f)) return "-0.0";
  if (std::isfinite(f) && std::floor(f) == f && std::fabs(f) < 1e21) {
    char buf[400];
    std::snprintf(buf, sizeof(buf), "%.1f", f);
    return buf;
  }
  return js_number(f);
}

// ---------------------------------------------------------------------------------------------- strings

std::string display_string(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return "undefined";
    case Kind::kNull: return "null";
    case Kind::kBool: return v.as_bool() ? "true" : "false";
    case Kind::kInt: return std::to_string(v.as_int());
    case Kind::kFloat: return float_display(v.as_float());
    case Kind::kString: return v.as_string();
    case Kind::kArray:
    case Kind::kObject:
    case Kind::kNamespace: {
      auto json = to_json(v, JsonOptions{}, /*undefined_as_null=*/false);
      return json.ok() ? *json : "<function>";
    }
    case Kind::kFunction: return "function " + v.function_name();
  }
  return "";
}

std::string concat_string(const Value& v) {
  switch (v.kind()) {
    case Kind::kInt: return js_number(static_cast<double>(v.as_int()));
    case Kind::kFloat: return js_number(v.as_float());
    case Kind::kArray: {
      std::string out;
      bool first = true;
      for (const Value& item : v.as_array()) {
        if (!first) out += ",";
        first = false;
        out += display_string(item);
      }
      return out;
    }
    case Kind::kObject:
    case Kind::kNamespace: return "[object Map]";
    default: return display_string(v);
  }
}

std::string join_item_string(const Value& v) {
  if (v.is_null() || v.is_undefined()) return "";
  return concat_string(v);
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20) {
          char buf[16];
          std::snprintf(buf, sizeof(buf), "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += "\"";
  return out;
}

// Escapes code points >= 0x7f as \uXXXX (UTF-16 units, lowercase hex), as @huggingface/jinja's ensure_ascii.
static std::string ascii_safe(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp = next_code_point(s, &i);
    auto escape = [&](uint32_t unit) {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "\\u%04x", unit);
      out += buf;
    };
    if (cp < 0x7f) {
      out += static_cast<char>(cp);
    } else if (cp <= 0xffff) {
      escape(cp);
    } else {
      cp -= 0x10000;
      escape(0xd800 + (cp >> 10));
      escape(0xdc00 + (cp & 0x3ff));
    }
  }
  return out;
}

// Approximates String.prototype.localeCompare (ICU root collation) for sort_keys: punctuation before digits
// before letters, letters case-insensitive first, then lowercase before uppercase.
static int locale_compare(const std::string& a, const std::string& b) {
  auto primary = [](unsigned char c) -> int {
    if (c >= 'a' && c <= 'z') return 512 + (c - 'a');
    if (c >= 'A' && c <= 'Z') return 512 + (c - 'A');
    if (c >= '0' && c <= '9') return 256 + (c - '0');
    return c < 0x80 ? c : 1024 + c;
  };
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    int pa = primary(static_cast<unsigned char>(a[i])), pb = primary(static_cast<unsigned char>(b[i]));
    if (pa != pb) return pa < pb ? -1 : 1;
  }
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  for (size_t i = 0; i < n; ++i) {
    bool la = std::islower(static_cast<unsigned char>(a[i])), lb = std::islower(static_cast<unsigned char>(b[i]));
    if (la != lb) return la ? -1 : 1;
  }
  return 0;
}

static Status json_rec(const Value& v, const JsonOptions& o, int depth, bool undef_null, std::string* out) {
  std::string item_sep = ", ", key_sep = ": ";
  if (o.has_separators) {
    item_sep = o.item_separator;
    key_sep = o.key_separator;
  } else if (o.indent) {
    item_sep = ",";
  }
  std::string indent(static_cast<size_t>(std::max(o.indent, 0)), ' ');
  std::string base = "\n";
  for (int i = 0; i < depth; ++i) base += indent;
  std::string child = base + indent;
  switch (v.kind()) {
    case Kind::kNull: *out += "null"; return Status::Ok();
    case Kind::kUndefined: *out += undef_null ? "null" : "undefined"; return Status::Ok();
    case Kind::kBool: *out += v.as_bool() ? "true" : "false"; return Status::Ok();
    case Kind::kInt:
    case Kind::kFloat: {
      double d = v.as_number();
      *out += std::isfinite(d) ? js_number(d) : "null";
      return Status::Ok();
    }
    case Kind::kString: *out += o.ensure_ascii ? ascii_safe(json_quote(v.as_string())) : json_quote(v.as_string());
      return Status::Ok();
    case Kind::kArray: {
      const ValueList& items = v.as_array();
      bool pretty = o.indent && !items.empty();
      *out += "[";
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) *out += item_sep;
        if (pretty) *out += child;
        FRUGAL_RETURN_IF_ERROR(json_rec(items[i], o, depth + 1, undef_null, out));
      }
      if (pretty) *out += base;
      *out += "]";
      return Status::Ok();
    }
    case Kind::kObject:
    case Kind::kNamespace: {
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& e : v.as_map().entries()) entries.push_back(&e);
      if (o.sort_keys)
        std::stable_sort(entries.begin(), entries.end(),
                         [](auto* x, auto* y) { return locale_compare(x->first, y->first) < 0; });
      bool pretty = o.indent && !entries.empty();
      *out += "{";
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) *out += item_sep;
        if (pretty) *out += child;
        std::string key = json_quote(entries[i]->first);
        *out += o.ensure_ascii ? ascii_safe(key) : key;
        *out += key_sep;
        FRUGAL_RETURN_IF_ERROR(json_rec(entries[i]->second, o, depth + 1, undef_null, out));
      }
      if (pretty) *out += base;
      *out += "}";
      return Status::Ok();
    }
    case Kind::kFunction: return invalid_argument("Cannot convert to JSON: FunctionValue");
  }
  return Status::Ok();
}

StatusOr<std::string> to_json(const Value& v, const JsonOptions& options, bool undefined_as_null) {
  std::string out;
  FRUGAL_RETURN_IF_ERROR(json_rec(v, options, 0, undefined_as_null, &out));
  return out;
}

// ---------------------------------------------------------------------------------------------- equality

// JavaScript ToNumber on a string (decimal, optional exponent, Infinity; surrounding whitespace ignored).
static double js_to_number(const std::string& s) {
  std::string t(trim_end(trim_start(s)));
  if (t.empty()) return 0;
  if (t == "Infinity" || t == "+Infinity") return INFINITY;
  if (t == "-Infinity") return -INFINITY;
  for (char c : t)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'))
      return NAN;
  char* end = nullptr;
  double d = std::strtod(t.c_str(), &end);
  return end == t.c_str() + t.size() ? d : NAN;
}

static bool is_reference(const Value& v) { return v.identity() != nullptr; }

bool loose_equals(const Value& a, const Value& b) {
  if (is_reference(a) && is_reference(b)) return a.identity() == b.identity();
  bool a_nullish = a.is_null() || a.is_undefined(), b_nullish = b.is_null() || b.is_undefined();
  if (a_nullish || b_nullish) return a_nullish && b_nullish;
  if (is_reference(a)) return loose_equals(Value::string(concat_string(a)), b);
  if (is_reference(b)) return loose_equals(a, Value::string(concat_string(b)));
  if (a.kind() == Kind::kBool) return loose_equals(Value::number(a.as_bool() ? 1 : 0), b);
  if (b.kind() == Kind::kBool) return loose_equals(a, Value::number(b.as_bool() ? 1 : 0));
  if (a.is_string() && b.is_string()) return a.as_string() == b.as_string();
  double x = a.is_string() ? js_to_number(a.as_string()) : a.as_number();
  double y = b.is_string() ? js_to_number(b.as_string()) : b.as_number();
  return x == y;
}

bool strict_equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.as_number() == b.as_number();
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::kUndefined:
    case Kind::kNull: return true;
    case Kind::kBool: return a.as_bool() == b.as_bool();
    case Kind::kString: return a.as_string() == b.as_string();
    default: return a.identity() == b.identity();
  }
}

// ---------------------------------------------------------------------------------------------- UTF-8

bool is_js_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

uint32_t next_code_point(std::string_view s, size_t* i) {
  unsigned char c = static_cast<unsigned char>(s[*i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len <= 1 || *i + static_cast<size_t>(len) > s.size()) {
    ++*i;
    return c;
  }
  uint32_t cp = c & (0x7f >> len);
  for (int k = 1; k < len; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[*i + static_cast<size_t>(k)]);
    if ((cc & 0xc0) != 0x80) {
      ++*i;
      return c;
    }
    cp = (cp << 6) | (cc & 0x3f);
  }
  *i += static_cast<size_t>(len);
  return cp;
}

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xc0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xe0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    *out += static_cast<char>(0xf0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::string_view trim_start(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    if (!is_js_space(next_code_point(s, &j))) break;
    i = j;
  }
  return s.substr(i);
}

std::string_view trim_end(std::string_view s) {
  size_t keep = 0, i = 0;
  while (i < s.size()) {
    uint32_t cp = next_code_point(s, &i);
    if (!is_js_space(cp)) keep = i;
  }
  return s.substr(0, keep);
}

std::vector<std::string> code_points(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    next_code_point(s, &i);
    out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

size_t utf16_length(std::string_view s) {
  size_t n = 0, i = 0;
  while (i < s.size()) n += next_code_point(s, &i) > 0xffff ? 2 : 1;
  return n;
}

}  // namespace frugal::jinja
