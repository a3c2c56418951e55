#include "server/openai_api.h"

#include <gtest/gtest.h>

#include "server/sse.h"

namespace frugal {
namespace {

using nlohmann::json;

ParsedRequest parse_ok(ApiRoute route, const std::string& body) {
  ParsedRequest r;
  auto err = parse_request(route, body, &r);
  EXPECT_FALSE(err.has_value()) << body << " -> " << (err ? err->message : "");
  return r;
}

ApiError parse_err(ApiRoute route, const std::string& body) {
  ParsedRequest r;
  auto err = parse_request(route, body, &r);
  EXPECT_TRUE(err.has_value()) << body;
  return err.value_or(ApiError{});
}

constexpr ApiRoute kChat = ApiRoute::kChatCompletions;
constexpr ApiRoute kText = ApiRoute::kCompletions;

TEST(OpenAiParse, ChatDefaultsAreOpenAis) {
  ParsedRequest r = parse_ok(kChat, R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(r.route, kChat);
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.messages, json::parse(R"([{"role":"user","content":"hi"}])"));
  EXPECT_EQ(r.n, 1);
  EXPECT_EQ(r.max_tokens, -1);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 1.0f);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.0f);
  EXPECT_FLOAT_EQ(r.sampling.repeat_penalty, 1.0f);
  EXPECT_FALSE(r.seed_given);
  EXPECT_FALSE(r.deterministic());
  EXPECT_TRUE(r.stop.empty());
  EXPECT_EQ(r.top_logprobs, -1);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.include_usage);
  EXPECT_FALSE(r.cache_opt_in);
}

TEST(OpenAiParse, ChatAllFields) {
  ParsedRequest r = parse_ok(kChat, R"({
    "model": "x", "messages": [{"role":"system","content":"be brief"},{"role":"user","content":"hi","name":"bob"}],
    "n": 3, "max_tokens": 7, "max_completion_tokens": 9, "temperature": 0, "top_p": 0.5, "top_k": 12,
    "min_p": 0.25, "seed": 42, "stop": ["a", "", "bc"], "presence_penalty": 0.5, "frequency_penalty": -1,
    "repetition_penalty": 1.5, "repeat_last_n": -1, "logprobs": true, "top_logprobs": 3, "stream": true,
    "stream_options": {"include_usage": true}, "user": "u1", "frugal": {"cache": true}, "ignore_eos": true,
    "unknown_field": {"anything": [1, 2]}, "response_format": {"type": "text"}, "tools": [], "tool_choice": "none",
    "echo": false, "best_of": 1, "suffix": null, "logit_bias": {}
  })");
  EXPECT_EQ(r.messages, json::parse(R"([{"role":"system","content":"be brief"},{"role":"user","content":"hi","name":"bob"}])"));
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.max_tokens, 9);  // max_completion_tokens wins
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_EQ(r.sampling.top_k, 12);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.25f);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_TRUE(r.seed_given);
  EXPECT_TRUE(r.deterministic());
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, -1.0f);
  EXPECT_FLOAT_EQ(r.sampling.repeat_penalty, 1.5f);
  EXPECT_EQ(r.sampling.penalty_last_n, -1);
  EXPECT_EQ(r.top_logprobs, 3);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.user, "u1");
  EXPECT_TRUE(r.cache_opt_in);
  EXPECT_TRUE(r.ignore_eos);
}

TEST(OpenAiParse, ContentPartsAreJoinedAndNullIsEmpty) {
  ParsedRequest r = parse_ok(kChat, R"({"messages":[
    {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
    {"role":"assistant","content":null}]})");
  EXPECT_EQ(r.messages, json::parse(R"([{"role":"user","content":"a\nb"},{"role":"assistant","content":""}])"));
}

TEST(OpenAiParse, WrongTypesNameTheField) {
  struct Case {
    const char* body;
    const char* message;
    const char* param;
  };
  const Case cases[] = {
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})", "'temperature' must be a number", "temperature"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1.5})", "'max_tokens' must be an integer", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})", "'stream' must be a boolean", "stream"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})", "'stop' must be a string or an array of strings", "stop"},
      {R"({"messages":[{"role":"user","content":"x"}],"seed":"1"})", "'seed' must be an integer", "seed"},
      {R"({"messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":1}})",
       "'stream_options.include_usage' must be a boolean", "stream_options.include_usage"},
      {R"({"messages":"hi"})", "'messages' must be an array", "messages"},
      {R"({"messages":[{"role":"user","content":5}]})", "'messages[0].content' must be a string or an array of content parts",
       "messages[0].content"},
      {R"({"messages":[{"content":"x"}]})", "'messages[0].role' is required", "messages[0].role"},
      {R"({})", "'messages' is required", "messages"},
      {R"({"messages":[]})", "'messages' must not be empty", "messages"},
  };
  for (const Case& c : cases) {
    ApiError e = parse_err(kChat, c.body);
    EXPECT_EQ(e.http_status, 400) << c.body;
    EXPECT_EQ(e.message, c.message) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
  }
}

TEST(OpenAiParse, RangesAreChecked) {
  const char* bodies[] = {
      R"({"prompt":"x","n":0})",           R"({"prompt":"x","n":17})",          R"({"prompt":"x","max_tokens":0})",
      R"({"prompt":"x","top_p":1.5})",     R"({"prompt":"x","min_p":-0.1})",    R"({"prompt":"x","temperature":-1})",
      R"({"prompt":"x","logprobs":6})",    R"({"prompt":"x","repetition_penalty":0})",
      R"({"prompt":"x","presence_penalty":3})", R"({"prompt":"x","stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]})",
  };
  for (const char* b : bodies) EXPECT_EQ(parse_err(kText, b).http_status, 400) << b;
  EXPECT_EQ(parse_err(kChat, R"({"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":21})").param,
            "top_logprobs");
  EXPECT_EQ(parse_err(kChat, R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})").message,
            "'top_logprobs' needs 'logprobs': true");
  EXPECT_EQ(parse_err(kText, R"({"prompt":"x","n":17})").message, "'n' must be between 1 and 16");
  EXPECT_EQ(parse_err(kText, R"({"prompt":"x","top_p":1.5})").message, "'top_p' must be between 0 and 1 (got 1.5)");
}

TEST(OpenAiParse, UnsupportedFeaturesAreRejectedClearly) {
  struct Case {
    ApiRoute route;
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {kChat, R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})", "response_format"},
      {kChat, R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})", "tools"},
      {kChat, R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"required"})", "tool_choice"},
      {kChat, R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})",
       "messages[0].content[0]"},
      {kChat, R"({"messages":[{"role":"tool","content":"x"}]})", "messages[0].role"},
      {kText, R"({"prompt":"x","suffix":"y"})", "suffix"},
      {kText, R"({"prompt":"x","echo":true})", "echo"},
      {kText, R"({"prompt":"x","best_of":2})", "best_of"},
      {kText, R"({"prompt":"x","logit_bias":{"1":5}})", "logit_bias"},
      {kText, R"({"prompt":["a","b"]})", "prompt"},
  };
  for (const Case& c : cases) {
    ApiError e = parse_err(c.route, c.body);
    EXPECT_EQ(e.http_status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_EQ(e.code, "unsupported") << c.body;
    EXPECT_NE(e.message.find("not supported yet"), std::string::npos) << e.message;
  }
  EXPECT_EQ(parse_err(kChat, R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})").message,
            "'response_format' other than {\"type\": \"text\"} is not supported yet");
}

TEST(OpenAiParse, BadBodies) {
  ApiError e = parse_err(kText, "{\"prompt\":\"\xff\"}");
  EXPECT_EQ(e.message, "request body is not valid UTF-8");
  e = parse_err(kText, R"({"prompt":)");
  EXPECT_EQ(e.code, "invalid_json");
  EXPECT_EQ(e.message.rfind("request body is not valid JSON: ", 0), 0u) << e.message;
  EXPECT_EQ(parse_err(kText, "[1]").message, "request body must be a JSON object");
  EXPECT_EQ(parse_err(kText, "").code, "invalid_json");
  std::string deep = "{\"prompt\":\"x\",\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_EQ(parse_err(kText, deep).message, "request body nests deeper than 64 levels");
  // Brackets inside strings do not count.
  parse_ok(kText, "{\"prompt\":\"" + std::string(100, '[') + "\\\"\"}");
}

TEST(OpenAiParse, PromptForms) {
  EXPECT_EQ(parse_ok(kText, R"({"prompt":"abc"})").prompt, "abc");
  EXPECT_EQ(parse_ok(kText, R"({"prompt":["abc"]})").prompt, "abc");
  EXPECT_EQ(parse_ok(kText, R"({"prompt":[1,2,3]})").prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(parse_err(kText, R"({"prompt":[1,-2]})").param, "prompt");
  EXPECT_EQ(parse_err(kText, R"({"prompt":[[1],[2]]})").code, "unsupported");
  EXPECT_EQ(parse_err(kText, R"({"max_tokens":3})").message, "'prompt' is required");
  ParsedRequest g = parse_ok(ApiRoute::kGenerate, R"({"model":"m","prompt":"p","max_tokens":5.0,"temperature":0.5})");
  EXPECT_EQ(g.max_tokens, 5);  // 5.0 is an integer to JavaScript clients
  EXPECT_FLOAT_EQ(g.sampling.temperature, 0.5f);
  EXPECT_EQ(parse_ok(kText, R"({"prompt":"x","logprobs":2})").top_logprobs, 2);
  EXPECT_EQ(parse_ok(kText, R"({"prompt":"x","stop":"\n"})").stop, (std::vector<std::string>{"\n"}));
}

TEST(OpenAiCacheKey, NormalizesWhatDoesNotChangeTheOutput) {
  auto key = [](const char* body) {
    ParsedRequest r = parse_ok(kText, body);
    return cache_key_material(r, "model", "rendered");
  };
  // Field order, unknown fields, "user" and stream do not matter; greedy ignores seed and truncation.
  EXPECT_EQ(key(R"({"prompt":"a","temperature":0,"max_tokens":4})"),
            key(R"({"max_tokens":4,"x":1,"user":"u","temperature":0.0,"prompt":"a","seed":9,"top_k":3,"stream":true})"));
  EXPECT_NE(key(R"({"prompt":"a","temperature":0,"max_tokens":4})"), key(R"({"prompt":"a","temperature":0,"max_tokens":5})"));
  EXPECT_NE(key(R"({"prompt":"a","seed":1})"), key(R"({"prompt":"a","seed":2})"));
  EXPECT_NE(key(R"({"prompt":"a","temperature":0,"stop":["x"]})"), key(R"({"prompt":"a","temperature":0})"));
  ParsedRequest r = parse_ok(kText, R"({"prompt":"a","temperature":0})");
  EXPECT_NE(cache_key_material(r, "m1", "p"), cache_key_material(r, "m2", "p"));
  EXPECT_NE(cache_key_material(r, "m", "p1"), cache_key_material(r, "m", "p2"));
}

TEST(OpenAiBuild, ErrorEnvelope) {
  EXPECT_EQ(error_json(invalid_request("bad", "temperature")),
            json::parse(R"({"error":{"message":"bad","type":"invalid_request_error","param":"temperature","code":null}})"));
  ApiError e;
  e.http_status = 401;
  e.message = "no key";
  e.type = "authentication_error";
  e.code = "invalid_api_key";
  EXPECT_EQ(dump_json(error_json(e)),
            R"({"error":{"code":"invalid_api_key","message":"no key","param":null,"type":"authentication_error"}})");
}

TEST(OpenAiBuild, ChatResponse) {
  ResponseMeta meta{"chatcmpl-1", 1700000000, "stories"};
  ChoiceResult c;
  c.text = "Hello";
  c.finish_reason = "length";
  UsageInfo u{5, 2, 3, 0.25, false};
  EXPECT_EQ(build_response(kChat, meta, {c}, u), json::parse(R"({
    "id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"stories","system_fingerprint":"frugal",
    "choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"logprobs":null,"finish_reason":"length"}],
    "usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":3},
             "cost_usd":0.25,"cache_hit":false}})"));
}

TEST(OpenAiBuild, CompletionResponseWithLogprobs) {
  ResponseMeta meta{"cmpl-2", 7, "m"};
  ChoiceResult a, b;
  a.text = "ab";
  b.text = "c";
  b.finish_reason = "stop";
  a.has_logprobs = true;
  a.logprobs = {{"a", -0.5f, {{"a", -0.5f}, {"x", -1.0f}}}, {"b", -0.25f, {{"b", -0.25f}, {"b", -2.0f}}}};
  UsageInfo u{1, 3, 0, 0, true};
  EXPECT_EQ(build_response(kText, meta, {a, b}, u), json::parse(R"({
    "id":"cmpl-2","object":"text_completion","created":7,"model":"m","system_fingerprint":"frugal",
    "choices":[
      {"index":0,"text":"ab","finish_reason":"stop","logprobs":{"tokens":["a","b"],"token_logprobs":[-0.5,-0.25],
        "top_logprobs":[{"a":-0.5,"x":-1.0},{"b":-0.25}],"text_offset":[0,1]}},
      {"index":1,"text":"c","finish_reason":"stop","logprobs":null}],
    "usage":{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4,"prompt_tokens_details":{"cached_tokens":0},
             "cost_usd":0.0,"cache_hit":true}})"));
}

TEST(OpenAiBuild, ChatLogprobsAndPartialUtf8) {
  ResponseMeta meta{"id", 1, "m"};
  ChoiceResult c;
  c.text = "\xc3\xa9";
  c.has_logprobs = true;
  c.logprobs = {{"\xc3", -0.5f, {}}, {"\xa9", -0.25f, {{"\xa9", -0.25f}}}};
  json j = build_response(kChat, meta, {c}, UsageInfo{});
  EXPECT_EQ(json::parse(dump_json(j["choices"][0]["logprobs"])), json::parse(R"({"refusal":null,"content":[
    {"token":"\ufffd","logprob":-0.5,"bytes":[195],"top_logprobs":[]},
    {"token":"\ufffd","logprob":-0.25,"bytes":[169],"top_logprobs":[{"token":"\ufffd","logprob":-0.25,"bytes":[169]}]}]})"));
}

TEST(OpenAiBuild, ChatStreamChunks) {
  ResponseMeta meta{"chatcmpl-9", 5, "m"};
  StreamDelta first;
  first.role = true;
  EXPECT_EQ(build_stream_chunk(kChat, meta, first, false), json::parse(R"({"id":"chatcmpl-9","object":"chat.completion.chunk",
    "created":5,"model":"m","system_fingerprint":"frugal",
    "choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]})"));
  StreamDelta mid;
  mid.index = 1;
  mid.text = "hi";
  EXPECT_EQ(build_stream_chunk(kChat, meta, mid, true)["choices"],
            json::parse(R"([{"index":1,"delta":{"content":"hi"},"logprobs":null,"finish_reason":null}])"));
  EXPECT_TRUE(build_stream_chunk(kChat, meta, mid, true)["usage"].is_null());
  EXPECT_FALSE(build_stream_chunk(kChat, meta, mid, false).contains("usage"));
  StreamDelta last;
  last.finish_reason = "stop";
  EXPECT_EQ(build_stream_chunk(kChat, meta, last, false)["choices"],
            json::parse(R"([{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}])"));
  EXPECT_EQ(build_usage_chunk(kChat, meta, UsageInfo{2, 1, 0, 0.5, false}), json::parse(R"({"id":"chatcmpl-9",
    "object":"chat.completion.chunk","created":5,"model":"m","system_fingerprint":"frugal","choices":[],
    "usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":0},
             "cost_usd":0.5,"cache_hit":false}})"));
}

TEST(OpenAiBuild, TextStreamChunkAndModels) {
  ResponseMeta meta{"cmpl-1", 5, "m"};
  StreamDelta d;
  d.text = "x";
  d.finish_reason = "length";
  EXPECT_EQ(build_stream_chunk(kText, meta, d, false), json::parse(R"({"id":"cmpl-1","object":"text_completion",
    "created":5,"model":"m","system_fingerprint":"frugal",
    "choices":[{"index":0,"text":"x","logprobs":null,"finish_reason":"length"}]})"));
  EXPECT_EQ(build_models_response("stories", 3), json::parse(R"({"object":"list","data":[
    {"id":"stories","object":"model","created":3,"owned_by":"frugal"}]})"));
}

TEST(Sse, Framing) {
  EXPECT_EQ(sse_data(R"({"a":1})"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  EXPECT_EQ(sse_comment("keep-alive"), ": keep-alive\n\n");
}

TEST(Sse, ParserHandlesSplitsLineEndsAndComments) {
  const std::string stream = "data: {\"a\":1}\r\n\r\n: ping\n\nevent: x\ndata: l1\ndata: l2\n\rdata: [DONE]\n\n";
  for (size_t split = 0; split <= stream.size(); ++split) {
    SseParser p;
    p.feed(std::string_view(stream).substr(0, split));
    std::vector<std::string> got = p.take();
    p.feed(std::string_view(stream).substr(split));
    for (std::string& e : p.take()) got.push_back(std::move(e));
    EXPECT_EQ(got, (std::vector<std::string>{"{\"a\":1}", "l1\nl2", "[DONE]"})) << "split " << split;
  }
}

}  // namespace
}  // namespace frugal
