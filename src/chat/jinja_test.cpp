// Unit tests of the Jinja-subset interpreter with hand-written expectations (each one also checked against
// @huggingface/jinja 0.5.11 when it was written), and of the ChatTemplate API.
#include <gtest/gtest.h>

#include "chat/chat_template.h"
#include "chat/jinja_lexer.h"
#include "chat/jinja_template.h"
#include "chat/jinja_value.h"

namespace frugal {
namespace {

using jinja::JinjaTemplate;
using jinja::RenderLimits;
using jinja::Value;
using jinja::ValueMap;
using ojson = nlohmann::ordered_json;

constexpr int64_t kNow = 1721988000;  // 2024-07-26T10:00:00Z

StatusOr<std::string> render(const std::string& source, const ValueMap& vars = {}, const RenderLimits& limits = {}) {
  FRUGAL_ASSIGN_OR_RETURN(JinjaTemplate t, JinjaTemplate::parse(source));
  return t.render(vars, kNow, limits);
}

struct Case {
  const char* source;
  const char* expected;
};

// Whitespace control, literals, operators, statements, filters, tests, methods, globals.
const Case kCases[] = {
    {R"J({{ 'a' }}  {{- 'b' -}}  {{ 'c' }})J",
     R"J(abc)J"},
    {R"J(x
  {% if true %}
yes
  {% endif %}
z
)J",
     R"J(x
yes
z)J"},
    {R"J(a {#- c -#} b{# c #})J",
     R"J(ab)J"},
    {R"J({{ "q\"\n\t\\" }})J",
     R"J(q"
	\)J"},
    {R"J({{ 'x' 'y' }})J",
     R"J(xy)J"},
    {R"J({{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 7 / 2 }} {{ 2 ** 3 ** 2 }})J",
     R"J(7 9 3 -4 1 3.5 64)J"},
    {R"J({{ 1.0 }} {{ 2.5 }} {{ 1.0 ~ '' }} {{ [1.0, 2] }} {{ 3 - 1.0 }})J",
     R"J(1.0 2.5 1 [1, 2] 2.0)J"},
    {R"J({{ 'a' ~ 1 ~ true ~ [1, 'b'] }})J",
     R"J(a1true1,b)J"},
    {R"J({{ 1 == 1.0 }} {{ '1' == 1 }} {{ none == undefined_var }} {{ [] == [] }})J",
     R"J(true true true false)J"},
    {R"J({{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ 'x' in undefined_var }})J",
     R"J(true true true true false)J"},
    {R"J({{ true and 'x' }} {{ 0 or 'y' }} {{ not [] }} {{ [] or 'e' }})J",
     R"J(x y true e)J"},
    {R"J({{ 'yes' if 1 > 2 else 'no' }}|{{ 'shown' if false }}|)J",
     R"J(no||)J"},
    {R"J({{ [1, 2, 3, 4][1:3] }} {{ [1, 2, 3][::-1] }} {{ 'hello'[-3:] }} {{ [1, 2, 3][-1] }} {{ 'héllo'[1] }})J",
     R"J([2, 3] [3, 2, 1] llo 3 é)J"},
    {R"J({% for x in [1, 2, 3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }};{% endfor %})J",
     R"J(10truefalse33;21falsefalse32;32falsetrue31;)J"},
    {R"J({% for x in [1, 2] %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %})J",
     R"J(-2,1-,)J"},
    {R"J({% for x in [] %}a{% else %}empty{% endfor %})J",
     R"J(empty)J"},
    {R"J({% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }} {% endfor %})J",
     R"J(a=1 b=2 )J"},
    {R"J({% for k in {'z': 1, 'a': 2} %}{{ k }}{% endfor %})J",
     R"J(za)J"},
    {R"J({% for x in [1, 2, 3, 4] if x is even %}{{ x }}{% endfor %})J",
     R"J(24)J"},
    {R"J({% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %})J",
     R"J(13)J"},
    {R"J({% for x in [1, 2] %}a{{ x }}{% if x == 2 %}{% break %}{% endif %}{% endfor %})J",
     R"J(a1)J"},
    {R"J({% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }})J",
     R"J(1)J"},
    {R"J({% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }})J",
     R"J(6)J"},
    {R"J({% set a, b = 1, 2 %}{{ b }}{{ a }})J",
     R"J(21)J"},
    {R"J({% set t %}in {{ 'block' }}{% endset %}[{{ t }}])J",
     R"J([in block])J"},
    {R"J({% macro m(a, b='B', c=a ~ '!') %}{{ a }}{{ b }}{{ c }}{% endmacro %}{{ m('x') }} {{ m('y', c='C') }})J",
     R"J(xBx! yBC)J"},
    {R"J({% macro w(t) %}<{{ caller(t) }}>{% endmacro %}{% call(v) w('q') %}[{{ v }}]{% endcall %})J",
     R"J(<[q]>)J"},
    {R"J({% filter upper %}shout {{ 'it' }}{% endfilter %})J",
     R"J(SHOUT IT)J"},
    {R"J({{ 'Hello World' | lower }} {{ 'ab' | upper }} {{ 'hello world' | title }} {{ 'hello' | capitalize }} {{ '  x  ' | trim }}|)J",
     R"J(hello world AB Hello World Hello x|)J"},
    {R"J({{ [3, 1, 2] | sort | join(',') }} {{ [1, 2, 2, 1] | unique | list | length }} {{ 'abc' | length }} {{ [1, 2] | first }}{{ [1, 2] | last }} {{ [1, 2] | reverse | join }})J",
     R"J(1,2,3 2 3 12 21)J"},
    {R"J({{ {'b': [1, 'x', none, true], 'a': 1.5} | tojson }})J",
     R"J({"b": [1, "x", null, true], "a": 1.5})J"},
    {R"J({{ {'a': [1, 2], 'e': {}} | tojson(indent=2) }})J",
     R"J({
  "a": [
    1,
    2
  ],
  "e": {}
})J"},
    {R"J({{ 'é"' | tojson }} {{ 'é' | tojson(ensure_ascii=true) }} {{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }} {{ [1, 2] | tojson(separators=(',', ':')) }})J",
     R"J("é\"" "\u00e9" {"a": 2, "b": 1} [1,2])J"},
    {R"J({{ undefined_var | default('d') }} {{ '' | default('e', true) }} {{ 'v' | default('x') }})J",
     R"J(d e v)J"},
    {R"J({{ [{'n': 'a', 'k': 1}, {'n': 'b'}] | selectattr('k') | map(attribute='n') | join }} {{ [{'t': 'x'}, {'t': 'y'}] | rejectattr('t', 'equalto', 'x') | map(attribute='t') | join }})J",
     R"J(a y)J"},
    {R"J({{ 'line1
line2

line4' | indent(2) }})J",
     R"J(line1
  line2

  line4)J"},
    {R"J({{ '42abc' | int }} {{ 'x' | int }} {{ '3.5' | float }} {{ 3.9 | int }} {{ -3 | abs }} {{ 5 | string }})J",
     R"J(42 0 3.5 3 3 5)J"},
    {R"J({{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'a-b-c'.split('-', 1) }})J",
     R"J(["a", "b", "", "c"] ["a", "b"] ["a", "b-c"])J"},
    {R"J({{ ' x '.strip() }}|{{ ' x '.lstrip() }}|{{ ' x '.rstrip() }}|{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'aaa'.replace('a', 'b', 2) }} {{ 'ab'.upper() }})J",
     R"J(x|x | x|true true bba AB)J"},
    {R"J({{ {'a': 1}.get('a') }} {{ {'a': 1}.get('z', 'dflt') }} {{ {'a': 1}.get('z') }} {{ {'a': 1, 'b': 2}.keys() | join }} {{ {'a': 1}.values() }})J",
     R"J(1 dflt  ab [1])J"},
    {R"J({{ x is defined }} {{ none is none }} {{ 'a' is string }} {{ 1 is number }} {{ 1.5 is integer }} {{ {} is mapping }} {{ [] is iterable }} {{ 3 is odd }} {{ true is boolean }} {{ x is not defined }})J",
     R"J(false true true true false true true true true true)J"},
    {R"J({{ range(3) | join(',') }} {{ range(1, 7, 2) | join(',') }} {{ range(3, 0, -1) | join(',') }})J",
     R"J(0,1,2 1,3,5 3,2,1)J"},
    {R"J({{ strftime_now('%Y-%m-%d %H:%M %b %B %%') }})J",
     R"J(2024-07-26 10:00 Jul July %)J"},
    {R"J({{ x.y.z }}|{{ none.attr }}|{{ ('a', 'b')[1] }}|{{ {'k': {'j': 'v'}}['k'].j }})J",
     R"J(||b|v)J"},
    {R"J({{ {'a': 1, 'b': 2} | items | list | length }} {{ {'a': 1} | length }} {{ {'b': 1, 'a': 2} | dictsort | first | first }})J",
     R"J(2 1 a)J"},
    {R"J({{ [1, [2, 'x']] }} {{ {'a': none} }} {{ none }}{{ undefined_var }}|{{ true }} {{ 2.0 * 2 }})J",
     R"J([1, [2, "x"]] {"a": null} |true 4.0)J"},
    {R"J({%- generation -%} kept {% endgeneration %})J",
     R"J(kept )J"},
};

TEST(Jinja, HandWrittenCases) {
  for (const Case& c : kCases) {
    auto got = render(c.source);
    ASSERT_TRUE(got.ok()) << c.source << "\n" << got.status().message();
    EXPECT_EQ(*got, c.expected) << c.source;
  }
}

TEST(Jinja, VariablesFromTheCaller) {
  ValueMap vars;
  ValueMap message;
  message.set("role", Value::string("user"));
  message.set("content", Value::string("hi"));
  vars.set("messages", Value::array({Value::object(message)}));
  auto got = render("{% for m in messages %}{{ m.role }}:{{ m['content'] }}{% endfor %}", vars);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, "user:hi");
  vars.set("range", Value::integer(1));
  EXPECT_FALSE(render("x", vars).ok()) << "a variable may not replace a built-in";
}

TEST(Jinja, SyntaxErrorsNameLineAndColumn) {
  auto r = JinjaTemplate::parse("line one\n{% if x %}\n  {{ a | }}\n{% endif %}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("chat template:3:", 0), 0u) << r.status().message();
  EXPECT_FALSE(JinjaTemplate::parse("{% if x %}never closed").ok());
  EXPECT_FALSE(JinjaTemplate::parse("{% endfor %}").ok());
  EXPECT_FALSE(JinjaTemplate::parse("{{ 'unterminated }}").ok());
  EXPECT_FALSE(JinjaTemplate::parse("{# open comment").ok());
  EXPECT_FALSE(JinjaTemplate::parse("{{ '\\q' }}").ok());
  EXPECT_FALSE(JinjaTemplate::parse("{% frobnicate %}").ok());
  EXPECT_FALSE(JinjaTemplate::parse("{{ " + std::string(5000, '(')).ok());  // nesting bound, no stack overflow
}

TEST(Jinja, RuntimeErrorsNameTheirPosition) {
  auto r = render("ok\n{{ 'x' | frobnicate }}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "chat template:2:10: Unknown StringValue filter: frobnicate");
  r = render("{{ raise_exception('Only user and assistant roles are supported!') }}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("Only user and assistant roles are supported!"), std::string::npos);
  EXPECT_FALSE(render("{{ undefined_var + 1 }}").ok());
  EXPECT_FALSE(render("{{ none ~ 'x' }}").ok());
  EXPECT_FALSE(render("{{ 'a' < 'b' }}").ok());  // @huggingface/jinja compares numbers only
  EXPECT_FALSE(render("{% for x in 'abc' %}{% endfor %}").ok());
  EXPECT_FALSE(render("{{ undefined_fn() }}").ok());
  EXPECT_FALSE(render("{{ {1: 2} }}").ok());
  EXPECT_FALSE(render("{% set d = {} %}{% set d.x = 1 %}").ok());
  EXPECT_FALSE(render("{% break %}").ok());
  EXPECT_FALSE(render("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}").ok());
}

TEST(Jinja, BudgetsStopRunawayTemplates) {
  RenderLimits limits;
  limits.max_steps = 10000;
  auto r = render("{% for i in range(100000) %}x{% endfor %}", {}, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  limits = RenderLimits{};
  limits.max_output_bytes = 1000;
  r = render("{% for i in range(1000) %}xx{% endfor %}", {}, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  r = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  ASSERT_FALSE(r.ok()) << "unbounded recursion must fail cleanly";
}

TEST(Jinja, JavaScriptNumberFormatting) {
  EXPECT_EQ(jinja::js_number(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(jinja::js_number(1e21), "1e+21");
  EXPECT_EQ(jinja::js_number(1.5e-7), "1.5e-7");
  EXPECT_EQ(jinja::js_number(123456.0), "123456");
  EXPECT_EQ(jinja::js_number(-0.000001), "-0.000001");
  EXPECT_EQ(jinja::display_string(Value::number(-0.0)), "-0.0");
  EXPECT_EQ(jinja::display_string(Value::number(3.0)), "3.0");
}

TEST(Jinja, UnicodeWhitespaceAndLength) {
  auto r = render("{{ '\u00a0 x\u3000' | trim }}|{{ 'héllo' | length }}|{{ 'a😀' | length }}");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, "x|5|3");  // JavaScript counts UTF-16 units
}

ChatTemplateInputs conversation() {
  ChatTemplateInputs in;
  in.messages = ojson::parse(R"([{"role": "system", "content": "Be brief."},
                                 {"role": "user", "content": [{"type": "text", "text": "one"},
                                                              {"type": "text", "text": "two"}]}])");
  in.bos_token = "<s>";
  in.eos_token = "</s>";
  in.now_unix = kNow;
  return in;
}

TEST(ChatTemplate, ContentPartsAreJoinedWithNewlines) {
  auto t = ChatTemplate::parse("{% for m in messages %}[{{ m.role }}|{{ m.content }}]{% endfor %}");
  ASSERT_TRUE(t.ok()) << t.status().message();
  auto r = t->apply(conversation());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, "[system|Be brief.][user|one\ntwo]");
  ojson with_image = ojson::parse(R"([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])");
  EXPECT_TRUE(normalize_messages(with_image)[0]["content"].is_array()) << "non-text parts are left alone";
}

TEST(ChatTemplate, InputsReachTheTemplate) {
  auto t = ChatTemplate::parse(
      "{{ bos_token }}{{ add_generation_prompt }}{{ tools is none }}{{ enable_thinking }}"
      "{{ strftime_now('%d %b %Y') }}{{ eos_token }}");
  ASSERT_TRUE(t.ok());
  ChatTemplateInputs in = conversation();
  in.extra_context = ojson::parse(R"({"enable_thinking": false})");
  auto r = t->apply(in);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, "<s>truetruefalse26 Jul 2024</s>");
  in.extra_context = ojson::parse(R"({"namespace": 1})");
  EXPECT_FALSE(t->apply(in).ok());
}

TEST(ChatTemplate, ToolSchemasKeepKeyOrder) {
  auto t = ChatTemplate::parse("{{ tools | tojson }}");
  ASSERT_TRUE(t.ok());
  ChatTemplateInputs in = conversation();
  in.tools = ojson::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {"z": 1, "a": 2.0}}}])");
  auto r = t->apply(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, R"([{"type": "function", "function": {"name": "f", "parameters": {"z": 1, "a": 2}}}])");
}

TEST(ChatTemplate, BuiltinsRenderTheirFormats) {
  ChatTemplateInputs in = conversation();
  auto chatml = ChatTemplate::builtin(BuiltinTemplate::kChatml).apply(in);
  ASSERT_TRUE(chatml.ok()) << chatml.status().message();
  EXPECT_EQ(*chatml, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\none\ntwo<|im_end|>\n"
                     "<|im_start|>assistant\n");
  auto llama3 = ChatTemplate::builtin(BuiltinTemplate::kLlama3).apply(in);
  ASSERT_TRUE(llama3.ok());
  EXPECT_EQ(*llama3, "<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                     "<|start_header_id|>user<|end_header_id|>\n\none\ntwo<|eot_id|>"
                     "<|start_header_id|>assistant<|end_header_id|>\n\n");
  in.messages = ojson::parse(R"([{"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "<think>hmm</think>Hello"}, {"role": "user", "content": "Bye"}])");
  auto ds3 = ChatTemplate::builtin(BuiltinTemplate::kDeepseek3).apply(in);
  ASSERT_TRUE(ds3.ok());
  EXPECT_EQ(*ds3, "<s><｜User｜>Hi<｜Assistant｜>Hello<｜end▁of▁sentence｜><｜User｜>Bye<｜Assistant｜>");
  in.messages = ojson::parse(R"([{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hi"}])");
  auto ds2 = ChatTemplate::builtin(BuiltinTemplate::kDeepseek2).apply(in);
  ASSERT_TRUE(ds2.ok());
  EXPECT_EQ(*ds2, "<s>You are helpful.\n\nUser: Hi\n\nAssistant:");
  in.add_generation_prompt = false;
  auto plain = ChatTemplate::builtin(BuiltinTemplate::kPlain).apply(in);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, "system: You are helpful.\nuser: Hi\n");
}

TEST(ChatTemplate, TemplateForModelPrefersTheGgufTemplate) {
  std::string chosen;
  auto none = [](const std::string&) { return false; };
  auto t = template_for_model("{{ 'own' }}", none, &chosen);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(chosen, "gguf");
  EXPECT_FALSE(template_for_model("{% if %}", none, &chosen).ok()) << "a broken GGUF template is an error";
  struct Probe {
    const char* token;
    const char* name;
  };
  for (Probe p : {Probe{"<|im_start|>", "chatml"}, Probe{"<|start_header_id|>", "llama3"},
                  Probe{"<｜User｜>", "deepseek3"}, Probe{"<｜begin▁of▁sentence｜>", "deepseek2"}, Probe{"<x>", "plain"}}) {
    auto has = [&](const std::string& tok) { return tok == p.token; };
    ASSERT_TRUE(template_for_model("", has, &chosen).ok());
    EXPECT_EQ(chosen, p.name) << p.token;
  }
}

TEST(ChatTemplate, StartsWithBos) {
  EXPECT_TRUE(starts_with_bos("<s>hello", "<s>"));
  EXPECT_FALSE(starts_with_bos("hello<s>", "<s>"));
  EXPECT_FALSE(starts_with_bos("hello", ""));
}

}  // namespace
}  // namespace frugal
