// End-to-end check of `frugal serve` with the official OpenAI JavaScript client (npm `openai`, pinned in
// tests/js/package.json): models, chat and completions, streaming and not, usage present and consistent,
// error envelopes surfacing as the client's typed errors.
//
//   node tests/e2e/openai_client.mjs BASE_URL API_KEY      e.g. http://127.0.0.1:8080/v1 sk-test
//
// Prints one line per check and "openai e2e: N checks passed"; exits 1 on the first failure.
import { createRequire } from 'node:module';

const require = createRequire(new URL('../js/package.json', import.meta.url));
const openaiModule = require('openai');
const OpenAI = openaiModule.OpenAI ?? openaiModule.default ?? openaiModule;

const [baseURL, apiKey] = process.argv.slice(2);
if (!baseURL || !apiKey) {
  console.error('usage: node openai_client.mjs BASE_URL API_KEY');
  process.exit(2);
}
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
let passed = 0;

function check(cond, what, detail) {
  if (!cond) {
    console.error(`FAIL: ${what}${detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
    process.exit(1);
  }
  passed++;
  console.log(`ok: ${what}`);
}

function checkUsage(u, what) {
  check(u && Number.isInteger(u.prompt_tokens) && u.prompt_tokens > 0, `${what}: usage.prompt_tokens`, u);
  check(Number.isInteger(u.completion_tokens) && u.completion_tokens > 0, `${what}: usage.completion_tokens`, u);
  check(u.total_tokens === u.prompt_tokens + u.completion_tokens, `${what}: usage.total_tokens adds up`, u);
  check(Number.isInteger(u.prompt_tokens_details?.cached_tokens), `${what}: usage.prompt_tokens_details.cached_tokens`, u);
  check(typeof u.cost_usd === 'number' && u.cost_usd >= 0, `${what}: usage.cost_usd`, u);
}

async function main() {
  const models = await client.models.list();
  const ids = models.data.map((m) => m.id);
  check(ids.length === 1, 'models.list has the one model', ids);
  const model = ids[0];

  const messages = [
    { role: 'system', content: 'You tell short stories.' },
    { role: 'user', content: 'Tell me about a cat.' },
  ];
  const chat = await client.chat.completions.create({ model, messages, max_tokens: 24, temperature: 0 });
  const text = chat.choices[0].message.content;
  check(chat.object === 'chat.completion' && chat.model === model, 'chat: object and model', chat);
  check(typeof text === 'string' && text.length > 0, 'chat: content', chat.choices[0]);
  check(['stop', 'length'].includes(chat.choices[0].finish_reason), 'chat: finish_reason', chat.choices[0]);
  checkUsage(chat.usage, 'chat');
  check(chat.usage.cost_usd > 0, 'chat: cost_usd > 0 with --cost-per-hour', chat.usage);

  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let streamed = '';
  let finish = null;
  let usage = null;
  let sawRole = false;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta?.role === 'assistant') sawRole = true;
      if (c.delta?.content) streamed += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  check(sawRole, 'chat stream: first delta has the assistant role');
  check(streamed === text, 'chat stream: deltas concatenate to the non-streamed content', { streamed, text });
  check(finish === chat.choices[0].finish_reason, 'chat stream: finish_reason', finish);
  checkUsage(usage, 'chat stream');
  check(usage.completion_tokens === chat.usage.completion_tokens && usage.prompt_tokens === chat.usage.prompt_tokens,
    'chat stream: usage equals the non-streamed usage', { usage, whole: chat.usage });

  const prompt = 'Once upon a time, there was a little dog';
  const comp = await client.completions.create({ model, prompt, max_tokens: 16, temperature: 0 });
  check(comp.object === 'text_completion' && comp.choices[0].text.length > 0, 'completions: text', comp);
  checkUsage(comp.usage, 'completions');
  const cstream = await client.completions.create({ model, prompt, max_tokens: 16, temperature: 0, stream: true });
  let ctext = '';
  for await (const chunk of cstream) ctext += chunk.choices[0]?.text ?? '';
  check(ctext === comp.choices[0].text, 'completions stream: chunks concatenate to the text', { ctext });

  const two = await client.completions.create({ model, prompt, max_tokens: 6, temperature: 0.8, seed: 3, n: 2 });
  check(two.choices.length === 2 && two.choices[1].index === 1, 'completions: n=2', two.choices);

  const stopAt = comp.choices[0].text.slice(4, 7);
  const stopped = await client.completions.create({ model, prompt, max_tokens: 16, temperature: 0, stop: [stopAt] });
  check(stopped.choices[0].finish_reason === 'stop' && !stopped.choices[0].text.includes(stopAt),
    'completions: stop string ends the text before it', { stopAt, got: stopped.choices[0] });

  try {
    await client.chat.completions.create({ model, messages, temperature: 'hot' });
    check(false, 'bad type: expected a 400');
  } catch (e) {
    check(e instanceof OpenAI.BadRequestError && e.status === 400, 'bad type: BadRequestError 400', e.message);
    check(String(e.message).includes("'temperature' must be a number"), 'bad type: message names the field', e.message);
  }
  try {
    await client.chat.completions.create({ model, messages, response_format: { type: 'json_object' } });
    check(false, 'response_format: expected a 400');
  } catch (e) {
    check(e.status === 400 && String(e.message).includes('not supported yet'), 'response_format: rejected clearly', e.message);
  }
  const wrong = new OpenAI({ baseURL, apiKey: apiKey + '-wrong', maxRetries: 0 });
  try {
    await wrong.models.list();
    check(false, 'wrong key: expected a 401');
  } catch (e) {
    check(e instanceof OpenAI.AuthenticationError && e.status === 401, 'wrong key: AuthenticationError 401', e.message);
  }
  console.log(`openai e2e: ${passed} checks passed`);
}

main().catch((e) => {
  console.error('FAIL: unexpected error:', e?.stack ?? e);
  process.exit(1);
});
