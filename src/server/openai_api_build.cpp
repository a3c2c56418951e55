// Response builders for the OpenAI-compatible routes (see openai_api.h).
#include "server/openai_api.h"

namespace frugal {

using nlohmann::json;

namespace {

json bytes_json(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back((int)c);
  return b;
}

// Chat form: {"content": [{"token","logprob","bytes","top_logprobs":[{"token","logprob","bytes"}]}], "refusal": null}
json chat_logprobs_json(const std::vector<LogprobToken>& lps) {
  json content = json::array();
  for (const LogprobToken& t : lps) {
    json top = json::array();
    for (const auto& [tok, lp] : t.top) top.push_back({{"token", tok}, {"logprob", lp}, {"bytes", bytes_json(tok)}});
    content.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", bytes_json(t.token)}, {"top_logprobs", top}});
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

// Completions form: {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"}
json completion_logprobs_json(const std::vector<LogprobToken>& lps) {
  json tokens = json::array(), token_lps = json::array(), tops = json::array(), offsets = json::array();
  int64_t offset = 0;
  for (const LogprobToken& t : lps) {
    tokens.push_back(t.token);
    token_lps.push_back(t.logprob);
    json top = json::object();
    for (const auto& [tok, lp] : t.top) {
      if (!top.contains(tok)) top[tok] = lp;  // two ids can share a piece; keep the better one
    }
    tops.push_back(std::move(top));
    offsets.push_back(offset);
    offset += (int64_t)t.token.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json logprobs_for(ApiRoute route, bool has, const std::vector<LogprobToken>& lps) {
  if (!has) return nullptr;
  return route == ApiRoute::kChatCompletions ? chat_logprobs_json(lps) : completion_logprobs_json(lps);
}

json head(ApiRoute route, const ResponseMeta& meta, bool chunk) {
  const char* object = route == ApiRoute::kChatCompletions ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                                           : "text_completion";
  return {{"id", meta.id},
          {"object", object},
          {"created", meta.created},
          {"model", meta.model},
          {"system_fingerprint", "frugal"}};
}

}  // namespace

json usage_json(const UsageInfo& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}},
          {"cost_usd", u.cost_usd},
          {"cache_hit", u.cache_hit}};
}

json build_response(ApiRoute route, const ResponseMeta& meta, const std::vector<ChoiceResult>& choices,
                    const UsageInfo& usage) {
  json out = head(route, meta, /*chunk=*/false);
  json cs = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    json choice = {{"index", (int64_t)i}};
    if (route == ApiRoute::kChatCompletions) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    } else {
      choice["text"] = c.text;
    }
    choice["logprobs"] = logprobs_for(route, c.has_logprobs, c.logprobs);
    choice["finish_reason"] = c.finish_reason;
    cs.push_back(std::move(choice));
  }
  out["choices"] = std::move(cs);
  out["usage"] = usage_json(usage);
  return out;
}

json build_stream_chunk(ApiRoute route, const ResponseMeta& meta, const StreamDelta& d, bool include_usage) {
  json out = head(route, meta, /*chunk=*/true);
  json choice = {{"index", d.index}};
  if (route == ApiRoute::kChatCompletions) {
    json delta = json::object();
    if (d.role) {
      delta["role"] = "assistant";
      delta["content"] = d.text;
    } else if (!d.text.empty()) {
      delta["content"] = d.text;
    }
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = d.text;
  }
  choice["logprobs"] = logprobs_for(route, d.has_logprobs, d.logprobs);
  choice["finish_reason"] = d.finish_reason ? json(*d.finish_reason) : json(nullptr);
  out["choices"] = json::array({std::move(choice)});
  if (include_usage) out["usage"] = nullptr;
  return out;
}

json build_usage_chunk(ApiRoute route, const ResponseMeta& meta, const UsageInfo& usage) {
  json out = head(route, meta, /*chunk=*/true);
  out["choices"] = json::array();
  out["usage"] = usage_json(usage);
  return out;
}

json build_models_response(const std::string& model_id, int64_t created) {
  json model = {{"id", model_id}, {"object", "model"}, {"created", created}, {"owned_by", "frugal"}};
  return {{"object", "list"}, {"data", json::array({std::move(model)})}};
}

}  // namespace frugal
