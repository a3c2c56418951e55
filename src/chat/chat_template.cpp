#include "chat/chat_template.h"

#include <cmath>
#include <utility>

namespace frugal {
namespace {

using jinja::Value;
using jinja::ValueList;
using jinja::ValueMap;

// JSON to interpreter values. Like JavaScript, a float with an integral value becomes an integer.
Value to_value(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::null();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      return u <= static_cast<uint64_t>(INT64_MAX) ? Value::integer(static_cast<int64_t>(u))
                                                   : Value::number(static_cast<double>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: {
      double d = j.get<double>();
      if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.2e18) return Value::integer(static_cast<int64_t>(d));
      return Value::number(d);
    }
    case nlohmann::ordered_json::value_t::string: return Value::string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList items;
      for (const auto& e : j) items.push_back(to_value(e));
      return Value::array(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      ValueMap map;
      for (const auto& [k, v] : j.items()) map.set(k, to_value(v));
      return Value::object(std::move(map));
    }
    default: return Value();  // discarded / binary: not produced by JSON parsing
  }
}

constexpr const char* kChatml = R"({%- for message in messages -%}
{{- '<|im_start|>' + message['role'] + '\n' + (message['content'] or '') + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%})";

constexpr const char* kLlama3 = R"({{- bos_token -}}
{%- for message in messages -%}
{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + (message['content'] or '') | trim + '<|eot_id|>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}{%- endif -%})";

// R1-style: earlier turns' reasoning (text up to the last </think>) is dropped.
constexpr const char* kDeepseek3 = R"({{- bos_token -}}
{%- for message in messages -%}
{%- set content = message['content'] or '' -%}
{%- if message['role'] == 'system' -%}{{- content -}}
{%- elif message['role'] == 'user' -%}{{- '<｜User｜>' + content -}}
{%- elif message['role'] == 'assistant' -%}
{%- if '</think>' in content -%}{%- set content = content.split('</think>')[-1] -%}{%- endif -%}
{{- '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<｜Assistant｜>' -}}{%- endif -%})";

constexpr const char* kDeepseek2 = R"({{- bos_token -}}
{%- for message in messages -%}
{%- set content = message['content'] or '' -%}
{%- if message['role'] == 'system' -%}{{- content + '\n\n' -}}
{%- elif message['role'] == 'user' -%}{{- 'User: ' + content + '\n\n' -}}
{%- elif message['role'] == 'assistant' -%}{{- 'Assistant: ' + content + eos_token -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- 'Assistant:' -}}{%- endif -%})";

constexpr const char* kPlain = R"({%- for message in messages -%}
{{- message['role'] + ': ' + (message['content'] or '') + '\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- 'assistant:' -}}{%- endif -%})";

}  // namespace

const char* builtin_template_name(BuiltinTemplate which) {
  switch (which) {
    case BuiltinTemplate::kChatml: return "chatml";
    case BuiltinTemplate::kLlama3: return "llama3";
    case BuiltinTemplate::kDeepseek3: return "deepseek3";
    case BuiltinTemplate::kDeepseek2: return "deepseek2";
    case BuiltinTemplate::kPlain: return "plain";
  }
  return "?";
}

StatusOr<ChatTemplate> ChatTemplate::parse(const std::string& source) {
  FRUGAL_ASSIGN_OR_RETURN(jinja::JinjaTemplate t, jinja::JinjaTemplate::parse(source));
  return ChatTemplate(std::move(t));
}

ChatTemplate ChatTemplate::builtin(BuiltinTemplate which) {
  const char* source = kPlain;
  switch (which) {
    case BuiltinTemplate::kChatml: source = kChatml; break;
    case BuiltinTemplate::kLlama3: source = kLlama3; break;
    case BuiltinTemplate::kDeepseek3: source = kDeepseek3; break;
    case BuiltinTemplate::kDeepseek2: source = kDeepseek2; break;
    case BuiltinTemplate::kPlain: break;
  }
  auto parsed = jinja::JinjaTemplate::parse(source, std::string("built-in ") + builtin_template_name(which));
  FRUGAL_CHECK_MSG(parsed.ok(), parsed.status().message().c_str());
  return ChatTemplate(std::move(parsed).value());
}

nlohmann::ordered_json normalize_messages(const nlohmann::ordered_json& messages) {
  nlohmann::ordered_json out = messages;
  if (!out.is_array()) return out;
  for (auto& m : out) {
    if (!m.is_object() || !m.contains("content") || !m["content"].is_array()) continue;
    std::string text;
    bool all_text = true, first = true;
    for (const auto& part : m["content"]) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
        all_text = false;
        break;
      }
      if (!first) text += "\n";
      first = false;
      text += part["text"].get<std::string>();
    }
    if (all_text) m["content"] = text;
  }
  return out;
}

StatusOr<std::string> ChatTemplate::apply(const ChatTemplateInputs& in) const {
  if (!in.messages.is_array()) return invalid_argument("chat template: messages must be an array");
  if (!in.extra_context.is_null() && !in.extra_context.is_object())
    return invalid_argument("chat template: extra_context must be an object");
  ValueMap vars;
  if (in.extra_context.is_object())
    for (const auto& [k, v] : in.extra_context.items()) vars.set(k, to_value(v));
  vars.set("messages", to_value(normalize_messages(in.messages)));
  vars.set("add_generation_prompt", Value::boolean(in.add_generation_prompt));
  vars.set("bos_token", Value::string(in.bos_token));
  vars.set("eos_token", Value::string(in.eos_token));
  vars.set("tools", to_value(in.tools));
  return template_.render(vars, in.now_unix);
}

StatusOr<ChatTemplate> template_for_model(const std::string& gguf_template,
                                          const std::function<bool(const std::string&)>& has_token,
                                          std::string* chosen) {
  if (!gguf_template.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::parse(gguf_template));
    if (chosen) *chosen = "gguf";
    return t;
  }
  BuiltinTemplate which = BuiltinTemplate::kPlain;
  if (has_token("<|im_start|>")) {
    which = BuiltinTemplate::kChatml;
  } else if (has_token("<|start_header_id|>")) {
    which = BuiltinTemplate::kLlama3;
  } else if (has_token("<｜User｜>")) {
    which = BuiltinTemplate::kDeepseek3;
  } else if (has_token("<｜begin▁of▁sentence｜>")) {
    which = BuiltinTemplate::kDeepseek2;
  }
  if (chosen) *chosen = builtin_template_name(which);
  return ChatTemplate::builtin(which);
}

bool starts_with_bos(const std::string& rendered, const std::string& bos_token) {
  return !bos_token.empty() && rendered.compare(0, bos_token.size(), bos_token) == 0;
}

}  // namespace frugal
