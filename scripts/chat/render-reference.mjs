#!/usr/bin/env node
// Renders every chat template (*.jinja) in a directory with Hugging Face's reference JavaScript Jinja
// implementation (npm @huggingface/jinja, installed in tests/js by scripts/install-js-deps.sh) for a fixed set
// of conversations, and writes the expected outputs (or the errors @huggingface/jinja raised) as JSON.
// src/chat/chat_template_test.cpp renders the same inputs with frugal's interpreter and requires byte-equal
// output (or an error where the reference threw).
//
// Usage: node scripts/chat/render-reference.mjs TEMPLATE_DIR OUT.json
//
// Determinism: the clock is frozen at NOW_UNIX (UTC) so strftime_now() renders a fixed date; object keys keep
// insertion order; the cases below are the single source of truth (the C++ test reads them from OUT.json).
// Message content given as an array of OpenAI text parts is joined with "\n" before rendering, exactly as
// frugal's ChatTemplate::apply does (normalize_content below mirrors chat_template.cpp).
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const jsDir = join(here, "../../tests/js");
const require = createRequire(join(jsDir, "package.json"));
const { Template } = await import(require.resolve("@huggingface/jinja"));
const jinjaVersion = JSON.parse(
  readFileSync(join(jsDir, "node_modules/@huggingface/jinja/package.json"), "utf8"),
).version;

const NOW_UNIX = 1721988000; // 2024-07-26T10:00:00Z
process.env.TZ = "UTC";
const RealDate = Date;
globalThis.Date = class FrozenDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(NOW_UNIX * 1000);
    else super(...args);
  }
  static now() {
    return NOW_UNIX * 1000;
  }
};

const BOS = "<BOS>";
const EOS = "<EOS>";
const SYSTEM = { role: "system", content: "You are a helpful assistant." };
const USER1 = { role: "user", content: "Hello! What is 2+2?" };
const ASSISTANT1 = { role: "assistant", content: "2+2 is 4." };
const USER2 = { role: "user", content: "And 3+3?" };
const TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Get the current weather in a city.",
      parameters: {
        type: "object",
        properties: {
          city: { type: "string", description: "City name, e.g. Paris" },
          unit: { type: "string", enum: ["celsius", "fahrenheit"], description: "Temperature unit" },
        },
        required: ["city"],
      },
    },
  },
];

// name, messages, add_generation_prompt, tools (null = none), extra_context (merged into the globals).
// Mistral's templates require 9-character alphanumeric tool call ids.
const CASES = [
  { name: "system_user", messages: [SYSTEM, USER1], add_generation_prompt: true },
  { name: "system_user_no_prompt", messages: [SYSTEM, USER1], add_generation_prompt: false },
  { name: "multi_turn", messages: [SYSTEM, USER1, ASSISTANT1, USER2], add_generation_prompt: true },
  { name: "no_system", messages: [USER1, ASSISTANT1, USER2], add_generation_prompt: true },
  { name: "ends_with_assistant", messages: [USER1, ASSISTANT1], add_generation_prompt: false },
  {
    name: "content_parts",
    messages: [
      { role: "system", content: [{ type: "text", text: "Be brief." }] },
      {
        role: "user",
        content: [
          { type: "text", text: "First part." },
          { type: "text", text: "Second part." },
        ],
      },
    ],
    add_generation_prompt: true,
  },
  {
    name: "unicode_whitespace",
    messages: [
      { role: "user", content: "  Café — 日本語 \"quotes\" and 'apostrophes'\n\twith a tab  \n" },
      { role: "assistant", content: "Très bien: {{ not a tag }} {% neither %}\n" },
      { role: "user", content: "Back\\slash <|im_end|> end" },
    ],
    add_generation_prompt: true,
  },
  {
    name: "reasoning_history",
    messages: [
      USER1,
      { role: "assistant", content: "<think>\nSimple arithmetic.\n</think>\n\n2+2 is 4." },
      USER2,
    ],
    add_generation_prompt: true,
  },
  {
    name: "thinking_disabled",
    messages: [SYSTEM, USER1],
    add_generation_prompt: true,
    extra_context: { enable_thinking: false },
  },
  {
    name: "tools",
    messages: [
      { role: "user", content: "What is the weather in Paris?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [
          {
            id: "call12345",
            type: "function",
            function: { name: "get_weather", arguments: { city: "Paris", unit: "celsius" } },
          },
        ],
      },
      { role: "tool", tool_call_id: "call12345", name: "get_weather", content: "{\"temperature\": 22}" },
    ],
    add_generation_prompt: true,
    tools: TOOLS,
  },
  {
    // OpenAI clients send tool call arguments as a JSON string.
    name: "tools_string_arguments",
    messages: [
      SYSTEM,
      { role: "user", content: "Weather in Oslo?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "call67890",
            type: "function",
            function: { name: "get_weather", arguments: "{\"city\": \"Oslo\"}" },
          },
        ],
      },
      { role: "tool", tool_call_id: "call67890", content: "sunny" },
      { role: "assistant", content: "It is sunny in Oslo." },
      { role: "user", content: "Thanks!" },
    ],
    add_generation_prompt: true,
    tools: TOOLS,
  },
];

function normalizeContent(messages) {
  return messages.map((m) => {
    if (!Array.isArray(m.content)) return m;
    const texts = m.content.map((part) => {
      if (part.type !== "text") throw new Error(`unsupported content part type '${part.type}'`);
      return part.text;
    });
    return { ...m, content: texts.join("\n") };
  });
}

function render(source, c) {
  const template = new Template(source);
  const vars = {
    ...(c.extra_context ?? {}),
    messages: normalizeContent(c.messages),
    add_generation_prompt: c.add_generation_prompt,
    bos_token: BOS,
    eos_token: EOS,
    // Like Python transformers' apply_chat_template: `tools` is none (not undefined) when there are none.
    tools: c.tools ?? null,
  };
  return template.render(vars);
}

const [dir, outPath] = process.argv.slice(2);
if (!dir || !outPath) {
  console.error("usage: render-reference.mjs TEMPLATE_DIR OUT.json");
  process.exit(2);
}
const results = {};
const files = readdirSync(dir).filter((f) => f.endsWith(".jinja")).sort();
for (const file of files) {
  const source = readFileSync(join(dir, file), "utf8");
  results[file] = {};
  for (const c of CASES) {
    try {
      results[file][c.name] = { output: render(source, c) };
    } catch (e) {
      results[file][c.name] = { error: String(e?.message ?? e) };
    }
  }
}
const out = {
  generator: `@huggingface/jinja ${jinjaVersion}`,
  now_unix: NOW_UNIX,
  bos_token: BOS,
  eos_token: EOS,
  cases: CASES.map((c) => ({
    name: c.name,
    messages: c.messages,
    add_generation_prompt: c.add_generation_prompt,
    tools: c.tools ?? null,
    extra_context: c.extra_context ?? {},
  })),
  results,
};
writeFileSync(outPath, JSON.stringify(out, null, 1) + "\n");
console.error(`render-reference: ${files.length} templates x ${CASES.length} cases -> ${outPath}`);
