// OpenAI-compatible JSON <-> frugal requests: pure functions, no I/O, no clocks, no randomness (ids and
// timestamps are passed in). Thread-safety: every function is reentrant.
//
//   body bytes --parse_request()--> ParsedRequest --(server: template, tokenize, submit)--> engine
//   engine events --(server)--> ChoiceResult / StreamDelta --build_*()--> response JSON / SSE chunk JSON
//
// Routes:
//   POST /v1/chat/completions  {"messages": [...], ...}          -> "chat.completion" / "chat.completion.chunk"
//   POST /v1/completions       {"prompt": "..." | ["..."] | [ids], ...} -> "text_completion"
//   POST /v1/generate          {"model","prompt","max_tokens","temperature"} (any completions field is
//                              accepted) -> "text_completion" (answer in choices[0].text)
//
// Parsing rules: unknown fields are ignored; null means "absent" for every optional field; a field of the
// wrong type is a 400 naming it ("'temperature' must be a number"); features that would change the
// output but are not implemented (response_format other than text, tools, suffix, echo, best_of > 1,
// logit_bias, non-text content parts, several prompts) are a 400 saying "... is not supported yet", never
// silently ignored. The body must be valid UTF-8 and a JSON object nested at most kMaxJsonDepth deep.
//
// Sampling defaults are OpenAI's (temperature 1, top_p 1, no top-k, no min-p, no penalties), not the
// CLI's. Extensions accepted beside the OpenAI fields: top_k, min_p, repetition_penalty (alias
// repeat_penalty), repeat_last_n, ignore_eos, and "frugal": {"cache": true} (opt into the response cache
// for a request that is not deterministic).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sample/sampler.h"

namespace frugal {

enum class ApiRoute { kChatCompletions, kCompletions, kGenerate };
const char* api_route_path(ApiRoute route);  // "/v1/chat/completions", "/v1/completions", "/v1/generate"

inline constexpr int kMaxChoices = 16;            // n
inline constexpr size_t kMaxStopStrings = 16;     // stop (OpenAI allows 4; we are generous)
inline constexpr int kMaxTopLogprobsChat = 20;    // chat top_logprobs 0..20
inline constexpr int kMaxLogprobsCompletion = 5;  // completions logprobs 0..5
inline constexpr int kMaxJsonDepth = 64;          // nesting of arrays/objects in a request body

// An error for the client, rendered as the OpenAI envelope {"error": {"message","type","param","code"}}.
struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the offending field ("" -> null)
  std::string code;   // machine-readable code ("" -> null)
};
ApiError invalid_request(std::string message, std::string param = "", std::string code = "");
nlohmann::json error_json(const ApiError& e);

struct ParsedRequest {
  ApiRoute route = ApiRoute::kCompletions;
  std::string model;                  // as sent ("" when absent); the server does not require a match
  std::string prompt;                 // completions/generate: prompt text (unless prompt_tokens is set)
  std::vector<int32_t> prompt_tokens; // completions/generate: prompt given as token ids (non-empty if used)
  // chat: [{"role": string, "content": string, ["name": string]}, ...]; text parts already joined with
  // "\n", null content turned into "".
  nlohmann::json messages = nlohmann::json::array();
  int n = 1;
  int64_t max_tokens = -1;            // max_completion_tokens wins over max_tokens; -1: not given
  SamplingParams sampling;            // OpenAI defaults (see above); seed set only when seed_given
  bool seed_given = false;
  std::vector<std::string> stop;      // non-empty strings only
  int32_t top_logprobs = -1;          // -1: no logprobs; else the sampled token's plus this many (0..20)
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  bool ignore_eos = false;
  std::string user;
  bool cache_opt_in = false;          // "frugal": {"cache": true}

  // Same request, same output: greedy, or a fixed seed.
  bool deterministic() const { return sampling.temperature <= 0.0f || seed_given; }
};

// Parses and validates a request body for `route`. On success fills *out and returns nullopt.
std::optional<ApiError> parse_request(ApiRoute route, std::string_view body, ParsedRequest* out);

// The canonical description of everything that determines a response's content (route, model id,
// rendered prompt or token ids, n, max_tokens, sampling incl. seed, stop, logprobs, ignore_eos), as
// compact JSON with sorted keys: two requests with the same output have the same string. The server
// hashes it (with the adapter/salt) into the response cache key.
std::string cache_key_material(const ParsedRequest& r, const std::string& model_id, const std::string& rendered_prompt);

// --- responses ---

// One token's log probability for the response ("token" is the token's bytes, possibly a partial UTF-8
// sequence; the builders emit it with U+FFFD replacement and its exact "bytes").
struct LogprobToken {
  std::string token;
  float logprob = 0;
  std::vector<std::pair<std::string, float>> top;  // alternatives, best first
};

struct ChoiceResult {
  std::string text;
  std::string finish_reason = "stop";  // "stop" | "length" | ...
  bool has_logprobs = false;
  std::vector<LogprobToken> logprobs;
};

struct UsageInfo {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  double cost_usd = 0;
  bool cache_hit = false;  // answered from the response cache (cost 0, no engine time)
};
// {"prompt_tokens","completion_tokens","total_tokens","prompt_tokens_details":{"cached_tokens"},
//  "cost_usd","cache_hit"}
nlohmann::json usage_json(const UsageInfo& u);

struct ResponseMeta {
  std::string id;        // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0;   // unix seconds
  std::string model;     // the model id answered with
};

// Whole (non-streaming) response for the route.
nlohmann::json build_response(ApiRoute route, const ResponseMeta& meta, const std::vector<ChoiceResult>& choices,
                              const UsageInfo& usage);

// One streamed piece of one choice. Chat: role=true puts {"role":"assistant","content":""} in the delta
// (the first chunk of a choice); text goes in delta.content (omitted when empty and not the first chunk);
// finish_reason set -> the choice's last chunk. Completions: text in choices[0].text.
struct StreamDelta {
  int index = 0;
  bool role = false;
  std::string text;
  bool has_logprobs = false;
  std::vector<LogprobToken> logprobs;
  std::optional<std::string> finish_reason;
};
// include_usage: the chunk carries "usage": null (as OpenAI does when stream_options.include_usage).
nlohmann::json build_stream_chunk(ApiRoute route, const ResponseMeta& meta, const StreamDelta& d, bool include_usage);
// The final usage chunk: "choices": [] and "usage": {...}.
nlohmann::json build_usage_chunk(ApiRoute route, const ResponseMeta& meta, const UsageInfo& usage);

// GET /v1/models: {"object":"list","data":[{"id","object":"model","created","owned_by":"frugal"}]}
nlohmann::json build_models_response(const std::string& model_id, int64_t created);

// JSON text with invalid UTF-8 replaced by U+FFFD (never throws), compact.
std::string dump_json(const nlohmann::json& j);

}  // namespace frugal
