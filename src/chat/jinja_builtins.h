// Built-in filters, tests, methods and globals of the Jinja-subset interpreter (internal header).
// Errors are plain messages; the evaluator adds the template position.
//
// Filters, as @huggingface/jinja 0.5.11 defines them (per operand type; anything else is an error):
//   any:     safe, tojson[(indent=, ensure_ascii=, sort_keys=, separators=)], default(value[, boolean]) / d(...)
//   list:    list first last length count reverse unique join[(sep)] string sort[(reverse, case_sensitive,
//            attribute)] map(attribute=[, default=]) selectattr/rejectattr(attr[, test[, value]])
//            select/reject(test[, value])
//   string:  length count upper lower title capitalize trim indent[(width, first, blank)] join string int float
//            replace(old, new[, count]) escape/e wordcount
//   number:  abs int float string;  boolean: bool int float string
//   object:  items length count keys values get dictsort
// Beyond @huggingface/jinja: count, d, select, reject, escape/e, wordcount (it would reject them).
// Tests: defined undefined none boolean true false string number integer iterable sequence mapping callable
//   odd even lower upper equalto/eq (the latter only through selectattr/select).
// Methods: strings strip lstrip rstrip (whitespace only; arguments ignored, as @huggingface/jinja does) split
//   startswith endswith replace upper lower title capitalize, .length; objects get items keys values
//   dictsort; lists .length. Case mapping is ASCII-only.
// Globals: true false none True False None, raise_exception(msg), range(), namespace(), strftime_now(fmt)
//   (%Y %m %d %b %B %H %M %% in UTC from the render's clock; other directives are left as written, as
//   @huggingface/jinja does).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_value.h"

namespace frugal::jinja {

// {{ x | name }}
StatusOr<Value> filter_plain(const std::string& name, const Value& operand);

// {{ x | name(args) }}: positional arguments, keyword arguments, and whether every argument was written as a
// string literal (selectattr/rejectattr require it).
struct FilterArgs {
  ValueList positional;
  ValueMap kwargs;
  bool all_string_literals = false;
};
StatusOr<Value> filter_call(const std::string& name, const Value& operand, const FilterArgs& args,
                            CallContext& ctx);

// x is name / selectattr(..., name, b). `b` is null when the test has no argument.
StatusOr<bool> run_test(const std::string& name, const Value& a, const Value* b);

// Attribute `name` of a string, list or object that is not one of its keys (methods, .length); undefined if
// there is none.
Value builtin_member(const Value& object, const std::string& name);

// @huggingface/jinja's compareRuntimeValues (sort, dictsort): numbers and booleans compare numerically,
// strings lexically (optionally case-insensitive), null with null and undefined with undefined only.
StatusOr<int> compare_values(const Value& a, const Value& b, bool case_sensitive);

// true/false/none (and title-case forms), raise_exception, range, namespace, strftime_now (clock: now_unix).
void install_globals(Scope* scope, int64_t now_unix);

// Python-style str.replace with @huggingface/jinja's count handling (count < 0: all).
std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count);

// strftime restricted to %Y %m %d %b %B %H %M %% (UTC).
std::string strftime_utc(const std::string& format, int64_t unix_seconds);

}  // namespace frugal::jinja
