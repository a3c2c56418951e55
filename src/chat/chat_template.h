// Chat templates: render a conversation (OpenAI-style messages) into the prompt text a model expects, with the
// model's own Jinja template (GGUF key tokenizer.chat_template) or a built-in fallback. The interpreter and the
// exact Jinja subset it supports are described in jinja_template.h; its output is checked byte for byte against
// Hugging Face's reference implementation (npm @huggingface/jinja) on llama.cpp's collection of real templates
// (chat_template_test.cpp, scripts/chat/render-reference.mjs).
//
// What a template sees (as Python transformers' apply_chat_template passes it):
//   messages               the conversation; a message whose content is an array of OpenAI text parts
//                          ([{"type": "text", "text": ...}, ...]) gets the texts joined with "\n" as its content
//                          string before rendering; content arrays with any other part type (images...) are
//                          passed unchanged (the server rejects those before it gets here);
//   add_generation_prompt, bos_token, eos_token;
//   tools                  the tool list, or none when there are none;
//   every key of extra_context (e.g. enable_thinking, reasoning_effort); it may not replace a built-in
//   (true, none, range, namespace, raise_exception, strftime_now...) and the keys above take precedence;
//   strftime_now(fmt)      formats now_unix (UTC), so renders are reproducible.
//
// JSON inputs are nlohmann::ordered_json: key order reaches the prompt (tojson of tool schemas), and Python
// and JavaScript keep insertion order. (An nlohmann::json converts, but has already sorted its keys.)
//
// BOS: templates usually emit bos_token themselves. A server must then tokenize the rendered text without
// adding BOS again: check starts_with_bos() (llama.cpp drops the leading BOS text instead; same tokens).
//
// Thread-safety: a ChatTemplate is immutable after parse(); apply() may run concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "chat/jinja_template.h"

namespace frugal {

struct ChatTemplateInputs {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{role, content, ...}]
  bool add_generation_prompt = true;
  std::string bos_token, eos_token;
  nlohmann::ordered_json tools;                                       // null = none
  nlohmann::ordered_json extra_context = nlohmann::ordered_json::object();
  int64_t now_unix = 0;
};

// Fallback formats for models without a template of their own.
enum class BuiltinTemplate {
  kChatml,     // <|im_start|>role\ncontent<|im_end|>\n ... <|im_start|>assistant\n
  kLlama3,     // bos <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> ...
  kDeepseek3,  // bos system <｜User｜>content <｜Assistant｜>content<｜end▁of▁sentence｜> ... <｜Assistant｜>
  kDeepseek2,  // bos system\n\n User: content\n\n Assistant: content eos ... Assistant:
  kPlain,      // role: content\n ... assistant:
};
const char* builtin_template_name(BuiltinTemplate which);

class ChatTemplate {
 public:
  // Syntax errors are returned here ("chat template:12:5: ...").
  static StatusOr<ChatTemplate> parse(const std::string& source);
  static ChatTemplate builtin(BuiltinTemplate which);

  // Renders the conversation. Template errors (raise_exception(...), type errors) are kInvalidArgument with
  // the template position; a runaway template fails with kOutOfRange.
  StatusOr<std::string> apply(const ChatTemplateInputs& in) const;

  const std::string& source() const { return template_.source(); }

 private:
  explicit ChatTemplate(jinja::JinjaTemplate t) : template_(std::move(t)) {}
  jinja::JinjaTemplate template_;
};

// The template for a model: its own GGUF template when present (parse errors are returned, *chosen = "gguf"),
// else a built-in fallback picked from tokenizer facts: chatml when <|im_start|> is a token, llama3 when
// <|start_header_id|> is, deepseek3 when <｜User｜> is, deepseek2 when <｜begin▁of▁sentence｜> is, else plain
// (*chosen = builtin_template_name()). `chosen` may be null.
StatusOr<ChatTemplate> template_for_model(const std::string& gguf_template,
                                          const std::function<bool(const std::string&)>& has_token,
                                          std::string* chosen);

// Whether the rendered prompt already starts with the BOS text (then do not add a BOS token when tokenizing).
bool starts_with_bos(const std::string& rendered, const std::string& bos_token);

// The messages as the template sees them: text-part arrays joined into content strings (see above).
nlohmann::ordered_json normalize_messages(const nlohmann::ordered_json& messages);

}  // namespace frugal
