// Runtime values of the Jinja-subset interpreter (see jinja_template.h for the supported language).
//
// The semantics follow Hugging Face's reference JavaScript implementation (npm @huggingface/jinja 0.5.11),
// because that is what the reference check in chat_template_test.cpp compares against:
//   * integers and floats are distinct kinds, but arithmetic, printing and equality follow JavaScript numbers
//     (a JSON number with an integral value is an integer; 7.0 prints as "7.0", but `7.0 ~ ""` is "7");
//   * arrays, objects and namespaces are shared references (copying a Value copies the pointer), so `==` on
//     them is identity, and `ns.x = ...` is visible through every copy of `ns`;
//   * objects keep insertion order (JavaScript Map);
//   * undefined is its own kind: falsy, prints as nothing, attribute access on it yields undefined.
// Strings are UTF-8. Where JavaScript works on UTF-16 code units the interpreter uses code points, which agree
// for every character of the Basic Multilingual Plane (string length counts astral characters twice, as JS does).
//
// Thread-safety: a Value is not thread-safe (shared reference counts and mutable namespaces); one render owns
// its values.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"

namespace frugal::jinja {

class Value;
class Scope;
class Interpreter;
using ValueList = std::vector<Value>;

// Insertion-ordered string-keyed map (JavaScript Map semantics: setting an existing key keeps its position).
class ValueMap {
 public:
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);
  bool erase(const std::string& key);
  size_t size() const { return entries_.size(); }
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, Value>> entries_;
  std::unordered_map<std::string, size_t> index_;
};

// What a native function sees of its caller: the interpreter and the caller's scope (macros use dynamic
// scoping, as @huggingface/jinja does).
struct CallContext {
  Interpreter* interpreter = nullptr;
  std::shared_ptr<Scope> scope;
};

// Native function: positional arguments, then (when the call had keyword arguments) one trailing object
// Value with is_kwargs() set. Errors are plain messages; the interpreter adds the template position.
using NativeFn = std::function<StatusOr<Value>(ValueList& args, CallContext& ctx)>;

enum class Kind : uint8_t {
  kUndefined,
  kNull,
  kBool,
  kInt,
  kFloat,
  kString,
  kArray,      // also tuples (is_tuple())
  kObject,     // also keyword-argument bundles (is_kwargs())
  kNamespace,  // namespace(): attribute assignment allowed, no mapping methods
  kFunction,
};

class Value {
 public:
  Value() = default;  // undefined
  static Value null();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);  // a float
  static Value string(std::string s);
  static Value array(ValueList items, bool tuple = false);
  static Value object(ValueMap map, bool kwargs = false);
  static Value ns(ValueMap map);
  static Value function(std::string name, NativeFn fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_tuple() const { return kind_ == Kind::kArray && flag_; }
  bool is_object() const { return kind_ == Kind::kObject; }  // objects and kwargs
  bool is_kwargs() const { return kind_ == Kind::kObject && flag_; }
  bool is_map() const { return kind_ == Kind::kObject || kind_ == Kind::kNamespace; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return i_; }
  double as_float() const { return f_; }
  double as_number() const { return kind_ == Kind::kInt ? static_cast<double>(i_) : f_; }
  const std::string& as_string() const { return *s_; }
  const ValueList& as_array() const { return *a_; }
  const ValueMap& as_map() const { return *m_; }
  ValueMap& mutable_map() const { return *m_; }  // namespaces only (shared reference)
  const std::string& function_name() const { return fn_->name; }
  StatusOr<Value> call(ValueList& args, CallContext& ctx) const { return fn_->fn(args, ctx); }

  // Python/Jinja truthiness as @huggingface/jinja computes it (namespaces and functions are always true).
  bool truthy() const;
  // @huggingface/jinja's type name ("StringValue", "UndefinedValue"...), used in error messages.
  const char* type_name() const;
  // Identity of the shared payload (arrays, objects, namespaces, functions); null for scalars.
  const void* identity() const;

 private:
  struct Function {
    std::string name;
    NativeFn fn;
  };
  Kind kind_ = Kind::kUndefined;
  bool flag_ = false;  // tuple / kwargs
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const std::string> s_;
  std::shared_ptr<const ValueList> a_;
  std::shared_ptr<ValueMap> m_;
  std::shared_ptr<const Function> fn_;
};

// ---- Conversions that define printing, concatenation and JSON (JavaScript rules) ----

// JavaScript Number::toString (shortest round-trip digits, exponent form outside [1e-7, 1e21)).
std::string js_number(double v);
// What `{{ v }}` prints (RuntimeValue.toString): floats keep ".0", containers print as JSON with
// undefined members shown as "undefined", null as "null", undefined as "undefined" (blocks skip both).
std::string display_string(const Value& v);
// What `~` and string `+` see (String(v.value)): floats lose ".0", arrays join their items' display strings
// with ",", objects and namespaces print "[object Map]".
std::string concat_string(const Value& v);
// JavaScript Array.join on the raw values (the `join` filter): null/undefined items are empty.
std::string join_item_string(const Value& v);

struct JsonOptions {
  int indent = 0;  // 0: single line
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool has_separators = false;
  std::string item_separator, key_separator;
};
// The `tojson` filter (Python json.dumps spacing as @huggingface/jinja writes it). Fails on functions.
StatusOr<std::string> to_json(const Value& v, const JsonOptions& options, bool undefined_as_null = true);
// JSON.stringify of one string.
std::string json_quote(std::string_view s);

// JavaScript loose equality of the raw values (`==`), and strict equality (`in`, `unique`, `equalto`).
bool loose_equals(const Value& a, const Value& b);
bool strict_equals(const Value& a, const Value& b);

// ---- UTF-8 helpers with JavaScript's notion of whitespace (\s, String.prototype.trim) ----
bool is_js_space(uint32_t cp);
// Decodes the code point at s[*i] and advances *i (invalid bytes decode as themselves).
uint32_t next_code_point(std::string_view s, size_t* i);
void append_utf8(std::string* out, uint32_t cp);
std::string_view trim_start(std::string_view s);
std::string_view trim_end(std::string_view s);
std::vector<std::string> code_points(std::string_view s);  // one string per code point
size_t utf16_length(std::string_view s);

}  // namespace frugal::jinja
