// Request parsing for the OpenAI-compatible routes (see openai_api.h for the rules).
#include "server/openai_api.h"

#include <cmath>
#include <limits>

#include "tokenizer/utf8.h"

namespace frugal {

using nlohmann::json;

namespace {

#define FRUGAL_API_TRY(expr)                  \
  do {                                        \
    if (auto api_err_ = (expr)) return api_err_; \
  } while (0)

using MaybeError = std::optional<ApiError>;

MaybeError type_error(const std::string& name, const char* what) {
  return invalid_request("'" + name + "' must be " + what, name);
}

MaybeError unsupported_field(const std::string& name, const std::string& what) {
  return invalid_request(what + " is not supported yet", name, "unsupported");
}

// The member `name` of object o, or nullptr when absent or null.
const json* member(const json& o, const char* name) {
  auto it = o.find(name);
  if (it == o.end() || it->is_null()) return nullptr;
  return &*it;
}

MaybeError read_float(const json& o, const char* name, float* out) {
  const json* v = member(o, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) return type_error(name, "a number");
  const double d = v->get<double>();
  if (!std::isfinite(d)) return type_error(name, "a finite number");
  *out = (float)d;
  return std::nullopt;
}

MaybeError read_int(const json& o, const char* name, int64_t* out) {
  const json* v = member(o, name);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > (uint64_t)std::numeric_limits<int64_t>::max()) {
      return type_error(name, "an integer in the 64-bit range");
    }
    *out = v->get<int64_t>();
    return std::nullopt;
  }
  // 5.0 is an integer to most JSON producers (JavaScript numbers).
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      *out = (int64_t)d;
      return std::nullopt;
    }
  }
  return type_error(name, "an integer");
}

MaybeError read_bool(const json& o, const char* name, bool* out) {
  const json* v = member(o, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) return type_error(name, "a boolean");
  *out = v->get<bool>();
  return std::nullopt;
}

MaybeError read_string(const json& o, const char* name, std::string* out) {
  const json* v = member(o, name);
  if (!v) return std::nullopt;
  if (!v->is_string()) return type_error(name, "a string");
  *out = v->get<std::string>();
  return std::nullopt;
}

MaybeError check_range(const char* name, double v, double lo, double hi) {
  if (v < lo || v > hi) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "'%s' must be between %g and %g (got %g)", name, lo, hi, v);
    return invalid_request(buf, name);
  }
  return std::nullopt;
}

// Deepest nesting of arrays/objects in a JSON text (strings skipped), so that a hostile body cannot
// make the parser or the destructor recurse deeply.
int json_depth(std::string_view s) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

MaybeError parse_stop(const json& o, std::vector<std::string>* out) {
  const json* v = member(o, "stop");
  if (!v) return std::nullopt;
  if (v->is_string()) {
    if (!v->get_ref<const std::string&>().empty()) out->push_back(v->get<std::string>());
    return std::nullopt;
  }
  if (!v->is_array()) return type_error("stop", "a string or an array of strings");
  if (v->size() > kMaxStopStrings) {
    return invalid_request("'stop' has " + std::to_string(v->size()) + " strings; at most " +
                               std::to_string(kMaxStopStrings) + " are allowed",
                           "stop");
  }
  for (const json& s : *v) {
    if (!s.is_string()) return type_error("stop", "a string or an array of strings");
    if (!s.get_ref<const std::string&>().empty()) out->push_back(s.get<std::string>());
  }
  return std::nullopt;
}

// OpenAI's content forms: a string, or an array of parts of which only {"type":"text"} is supported.
MaybeError normalize_content(const json& content, const std::string& where, std::string* out) {
  if (content.is_null()) {
    out->clear();
    return std::nullopt;
  }
  if (content.is_string()) {
    *out = content.get<std::string>();
    return std::nullopt;
  }
  if (!content.is_array()) return type_error(where, "a string or an array of content parts");
  std::string joined;
  for (size_t j = 0; j < content.size(); ++j) {
    const json& part = content[j];
    const std::string pw = where + "[" + std::to_string(j) + "]";
    if (!part.is_object()) return type_error(pw, "an object");
    std::string type;
    FRUGAL_API_TRY(read_string(part, "type", &type));
    if (type != "text") {
      if (type.empty()) return invalid_request("'" + pw + ".type' is required", pw + ".type");
      return unsupported_field(pw, "content parts of type '" + type + "'");
    }
    const json* text = member(part, "text");
    if (!text || !text->is_string()) return type_error(pw + ".text", "a string");
    if (j > 0) joined += "\n";
    joined += text->get<std::string>();
  }
  *out = std::move(joined);
  return std::nullopt;
}

MaybeError parse_messages(const json& o, json* out) {
  const json* v = member(o, "messages");
  if (!v) return invalid_request("'messages' is required", "messages");
  if (!v->is_array()) return type_error("messages", "an array");
  if (v->empty()) return invalid_request("'messages' must not be empty", "messages");
  *out = json::array();
  for (size_t i = 0; i < v->size(); ++i) {
    const json& m = (*v)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return type_error(where, "an object");
    const json* role = member(m, "role");
    if (!role) return invalid_request("'" + where + ".role' is required", where + ".role");
    if (!role->is_string()) return type_error(where + ".role", "a string");
    const std::string r = role->get<std::string>();
    if (r == "tool" || r == "function") return unsupported_field(where + ".role", "the '" + r + "' role (tools)");
    if (r != "system" && r != "developer" && r != "user" && r != "assistant") {
      return invalid_request("'" + where + ".role' must be one of system, developer, user, assistant (got '" + r + "')",
                             where + ".role");
    }
    if (member(m, "tool_calls") || member(m, "function_call")) return unsupported_field(where + ".tool_calls", "tool calls");
    json msg = {{"role", r}};
    std::string content;
    auto it = m.find("content");
    if (it != m.end()) FRUGAL_API_TRY(normalize_content(*it, where + ".content", &content));
    msg["content"] = std::move(content);
    std::string name;
    FRUGAL_API_TRY(read_string(m, "name", &name));
    if (!name.empty()) msg["name"] = name;
    out->push_back(std::move(msg));
  }
  return std::nullopt;
}

MaybeError parse_prompt(const json& o, ParsedRequest* out) {
  const json* v = member(o, "prompt");
  if (!v) return invalid_request("'prompt' is required", "prompt");
  if (v->is_string()) {
    out->prompt = v->get<std::string>();
    return std::nullopt;
  }
  if (!v->is_array()) return type_error("prompt", "a string, an array of one string, or an array of token ids");
  if (v->empty()) return invalid_request("'prompt' must not be empty", "prompt");
  if ((*v)[0].is_string()) {
    if (v->size() > 1) return unsupported_field("prompt", "several prompts in one request");
    out->prompt = (*v)[0].get<std::string>();
    return std::nullopt;
  }
  if ((*v)[0].is_array()) return unsupported_field("prompt", "several prompts in one request");
  for (const json& t : *v) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return type_error("prompt", "a string, an array of one string, or an array of token ids");
    }
    out->prompt_tokens.push_back((int32_t)t.get<int64_t>());
  }
  return std::nullopt;
}

// Fields that would change the output but are not implemented: rejected, never ignored.
MaybeError reject_unsupported(const json& o, ApiRoute route) {
  if (const json* rf = member(o, "response_format")) {
    const json* type = rf->is_object() ? member(*rf, "type") : nullptr;
    if (!type || !type->is_string() || type->get<std::string>() != "text") {
      return unsupported_field("response_format", "'response_format' other than {\"type\": \"text\"}");
    }
  }
  for (const char* f : {"tools", "functions"}) {
    const json* t = member(o, f);
    if (t && !(t->is_array() && t->empty())) return unsupported_field(f, std::string("'") + f + "' (tool calling)");
  }
  for (const char* f : {"tool_choice", "function_call"}) {
    const json* t = member(o, f);
    if (t && !(t->is_string() && (t->get<std::string>() == "none" || t->get<std::string>() == "auto"))) {
      return unsupported_field(f, std::string("'") + f + "' (tool calling)");
    }
  }
  if (const json* s = member(o, "suffix"); s && !(s->is_string() && s->get<std::string>().empty())) {
    return unsupported_field("suffix", "'suffix'");
  }
  if (const json* e = member(o, "echo"); e && !(e->is_boolean() && !e->get<bool>())) {
    return unsupported_field("echo", "'echo'");
  }
  if (const json* b = member(o, "best_of"); b && !(b->is_number_integer() && b->get<int64_t>() <= 1)) {
    return unsupported_field("best_of", "'best_of' > 1");
  }
  if (const json* lb = member(o, "logit_bias"); lb && !(lb->is_object() && lb->empty())) {
    return unsupported_field("logit_bias", "'logit_bias'");
  }
  if (member(o, "audio")) return unsupported_field("audio", "audio output");
  (void)route;
  return std::nullopt;
}

MaybeError parse_sampling(const json& o, ParsedRequest* out) {
  SamplingParams& sp = out->sampling;
  sp = SamplingParams{};
  sp.temperature = 1.0f;
  sp.top_k = 0;
  sp.top_p = 1.0f;
  sp.min_p = 0.0f;
  FRUGAL_API_TRY(read_float(o, "temperature", &sp.temperature));
  FRUGAL_API_TRY(check_range("temperature", sp.temperature, 0, 100));
  FRUGAL_API_TRY(read_float(o, "top_p", &sp.top_p));
  FRUGAL_API_TRY(check_range("top_p", sp.top_p, 0, 1));
  int64_t top_k = 0;
  FRUGAL_API_TRY(read_int(o, "top_k", &top_k));
  sp.top_k = top_k < 0 ? 0 : (int32_t)std::min<int64_t>(top_k, std::numeric_limits<int32_t>::max());
  FRUGAL_API_TRY(read_float(o, "min_p", &sp.min_p));
  FRUGAL_API_TRY(check_range("min_p", sp.min_p, 0, 1));
  FRUGAL_API_TRY(read_float(o, "presence_penalty", &sp.presence_penalty));
  FRUGAL_API_TRY(check_range("presence_penalty", sp.presence_penalty, -2, 2));
  FRUGAL_API_TRY(read_float(o, "frequency_penalty", &sp.frequency_penalty));
  FRUGAL_API_TRY(check_range("frequency_penalty", sp.frequency_penalty, -2, 2));
  const char* rp = member(o, "repetition_penalty") ? "repetition_penalty" : "repeat_penalty";
  FRUGAL_API_TRY(read_float(o, rp, &sp.repeat_penalty));
  if (!(sp.repeat_penalty > 0)) return invalid_request(std::string("'") + rp + "' must be > 0", rp);
  int64_t last_n = sp.penalty_last_n;
  FRUGAL_API_TRY(read_int(o, "repeat_last_n", &last_n));
  if (last_n < -1 || last_n > std::numeric_limits<int32_t>::max()) {
    return invalid_request("'repeat_last_n' must be >= -1", "repeat_last_n");
  }
  sp.penalty_last_n = (int32_t)last_n;
  if (const json* seed = member(o, "seed")) {
    if (!seed->is_number_integer()) return type_error("seed", "an integer");
    sp.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : (uint64_t)seed->get<int64_t>();
    out->seed_given = true;
  }
  return std::nullopt;
}

MaybeError parse_limits(const json& o, ParsedRequest* out) {
  int64_t n = 1;
  FRUGAL_API_TRY(read_int(o, "n", &n));
  if (n < 1 || n > kMaxChoices) {
    return invalid_request("'n' must be between 1 and " + std::to_string(kMaxChoices), "n");
  }
  out->n = (int)n;
  const char* mt = member(o, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  FRUGAL_API_TRY(read_int(o, mt, &out->max_tokens));
  if (member(o, mt) && out->max_tokens < 1) return invalid_request(std::string("'") + mt + "' must be >= 1", mt);
  return std::nullopt;
}

MaybeError parse_logprobs(const json& o, ParsedRequest* out) {
  if (out->route == ApiRoute::kChatCompletions) {
    bool logprobs = false;
    FRUGAL_API_TRY(read_bool(o, "logprobs", &logprobs));
    int64_t top = 0;
    FRUGAL_API_TRY(read_int(o, "top_logprobs", &top));
    if (top < 0 || top > kMaxTopLogprobsChat) {
      return invalid_request("'top_logprobs' must be between 0 and " + std::to_string(kMaxTopLogprobsChat),
                             "top_logprobs");
    }
    if (member(o, "top_logprobs") && !logprobs) {
      return invalid_request("'top_logprobs' needs 'logprobs': true", "top_logprobs");
    }
    out->top_logprobs = logprobs ? (int32_t)top : -1;
    return std::nullopt;
  }
  int64_t lp = -1;
  FRUGAL_API_TRY(read_int(o, "logprobs", &lp));
  if (member(o, "logprobs") && (lp < 0 || lp > kMaxLogprobsCompletion)) {
    return invalid_request("'logprobs' must be between 0 and " + std::to_string(kMaxLogprobsCompletion), "logprobs");
  }
  out->top_logprobs = (int32_t)lp;
  return std::nullopt;
}

MaybeError parse_options(const json& o, ParsedRequest* out) {
  FRUGAL_API_TRY(read_string(o, "model", &out->model));
  FRUGAL_API_TRY(read_bool(o, "stream", &out->stream));
  if (const json* so = member(o, "stream_options")) {
    if (!so->is_object()) return type_error("stream_options", "an object");
    if (auto e = read_bool(*so, "include_usage", &out->include_usage)) {
      return type_error("stream_options.include_usage", "a boolean");
    }
  }
  FRUGAL_API_TRY(read_string(o, "user", &out->user));
  FRUGAL_API_TRY(read_bool(o, "ignore_eos", &out->ignore_eos));
  if (const json* f = member(o, "frugal")) {
    if (!f->is_object()) return type_error("frugal", "an object");
    if (auto e = read_bool(*f, "cache", &out->cache_opt_in)) return type_error("frugal.cache", "a boolean");
  }
  return std::nullopt;
}

}  // namespace

const char* api_route_path(ApiRoute route) {
  switch (route) {
    case ApiRoute::kChatCompletions: return "/v1/chat/completions";
    case ApiRoute::kCompletions: return "/v1/completions";
    case ApiRoute::kGenerate: return "/v1/generate";
  }
  return "?";
}

ApiError invalid_request(std::string message, std::string param, std::string code) {
  ApiError e;
  e.http_status = 400;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

json error_json(const ApiError& e) {
  json err = {{"message", e.message},
              {"type", e.type},
              {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  return json{{"error", std::move(err)}};
}

std::optional<ApiError> parse_request(ApiRoute route, std::string_view body, ParsedRequest* out) {
  if (!utf8::is_valid(body)) return invalid_request("request body is not valid UTF-8", "", "invalid_utf8");
  if (json_depth(body) > kMaxJsonDepth) {
    return invalid_request("request body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  json o;
  try {
    o = json::parse(body);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    const size_t p = what.find("] ");
    return invalid_request("request body is not valid JSON: " + (p == std::string::npos ? what : what.substr(p + 2)),
                           "", "invalid_json");
  }
  if (!o.is_object()) return invalid_request("request body must be a JSON object");

  *out = ParsedRequest{};
  out->route = route;
  FRUGAL_API_TRY(reject_unsupported(o, route));
  if (route == ApiRoute::kChatCompletions) {
    FRUGAL_API_TRY(parse_messages(o, &out->messages));
  } else {
    FRUGAL_API_TRY(parse_prompt(o, out));
  }
  FRUGAL_API_TRY(parse_sampling(o, out));
  FRUGAL_API_TRY(parse_limits(o, out));
  FRUGAL_API_TRY(parse_stop(o, &out->stop));
  FRUGAL_API_TRY(parse_logprobs(o, out));
  FRUGAL_API_TRY(parse_options(o, out));
  return std::nullopt;
}

std::string cache_key_material(const ParsedRequest& r, const std::string& model_id, const std::string& rendered_prompt) {
  const SamplingParams& s = r.sampling;
  // Greedy output does not depend on the seed or on the truncation stages.
  const bool greedy = s.temperature <= 0.0f;
  json k = {
      {"route", api_route_path(r.route)},
      {"model", model_id},
      {"prompt", rendered_prompt},
      {"prompt_tokens", r.prompt_tokens},
      {"n", r.n},
      {"max_tokens", r.max_tokens},
      {"stop", r.stop},
      {"top_logprobs", r.top_logprobs},
      {"ignore_eos", r.ignore_eos},
      {"temperature", greedy ? 0.0f : s.temperature},
      {"top_k", greedy ? 0 : s.top_k},
      {"top_p", greedy ? 1.0f : s.top_p},
      {"min_p", greedy ? 0.0f : s.min_p},
      {"seed", greedy ? json(nullptr) : (r.seed_given ? json(s.seed) : json("random"))},
      {"repeat_penalty", s.repeat_penalty},
      {"presence_penalty", s.presence_penalty},
      {"frequency_penalty", s.frequency_penalty},
      {"penalty_last_n", s.penalty_last_n},
  };
  return dump_json(k);
}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace frugal
