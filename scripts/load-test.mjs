#!/usr/bin/env node
// Bounded load test of a running `frugal serve` (loopback only; node's built-in fetch, no packages).
//
//   node scripts/load-test.mjs --url http://127.0.0.1:8080 [--key KEY] [--clients 64] [--requests 256]
//                              [--max-seconds 120] [--seed 1] [--max-prompt-tokens 400]
//
// `clients` workers share a fixed list of `requests` requests drawn from a seeded mix:
//   55% streaming (chat or completions), 20% non-streaming, 12% that disconnect mid-stream (long
//   generations, aborted after their first chunk), 13% bad bodies (invalid JSON, wrong types, unsupported
//   fields, invalid UTF-8, missing fields) that must get a 400 with the OpenAI error envelope.
// Prompt lengths are mixed (a few words up to about --max-prompt-tokens tokens).
// Passes (exit 0) when: every good request completes (200, usage adds up, streams end with a
// finish_reason and [DONE]), every bad body gets a 400 envelope, no request fails at the transport level
// other than the deliberate disconnects, the server still answers /health, and /metrics returns to
// 0 running, 0 waiting and a full free KV pool within 20 s. Exits 1 otherwise, 2 on bad arguments.
// Prints a summary (counts, elapsed, request latency p50/p99, generated tokens/s).

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const url = args.url;
if (!url) {
  console.error('usage: node scripts/load-test.mjs --url http://HOST:PORT [--key KEY] [--clients N] [--requests N]');
  process.exit(2);
}
const clients = Number(args.clients ?? 64);
const total = Number(args.requests ?? 256);
const maxSeconds = Number(args['max-seconds'] ?? 120);
const maxPromptTokens = Number(args['max-prompt-tokens'] ?? 400);
let seed = Number(args.seed ?? 1) >>> 0;
const headers = { 'Content-Type': 'application/json', ...(args.key ? { Authorization: `Bearer ${args.key}` } : {}) };

// mulberry32: a small seeded PRNG so that the request mix is the same on every run.
function rand() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

const words = ('once upon a time there was a little girl named lily she loved to play outside in the park with ' +
  'her friends one day she saw a big red ball under a tree and ran to get it the sun was warm').split(' ');
function promptOf(nWords) {
  const out = [];
  for (let i = 0; i < nWords; i++) out.push(pick(words));
  return out.join(' ');
}

function makeRequest(i) {
  const r = rand();
  const nWords = pick([3, 10, 40, Math.max(4, Math.floor(maxPromptTokens * 0.7))]);
  const chat = rand() < 0.5;
  const path = chat ? '/v1/chat/completions' : '/v1/completions';
  const base = chat ? { messages: [{ role: 'user', content: promptOf(nWords) }] } : { prompt: promptOf(nWords) };
  const maxTokens = 8 + Math.floor(rand() * 56);
  const sampling = rand() < 0.5 ? { temperature: 0 } : { temperature: 0.8, seed: i };
  if (r < 0.55) return { kind: 'stream', chat, path, body: { ...base, ...sampling, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } } };
  if (r < 0.75) return { kind: 'whole', chat, path, body: { ...base, ...sampling, max_tokens: maxTokens } };
  if (r < 0.87) return { kind: 'disconnect', chat, path, body: { ...base, ...sampling, max_tokens: 400, ignore_eos: true, stream: true } };
  const bad = pick([
    { raw: '{"prompt": "unterminated', path: '/v1/completions' },
    { raw: JSON.stringify({ prompt: 'x', temperature: 'hot' }), path: '/v1/completions' },
    { raw: JSON.stringify({ messages: 'hello' }), path: '/v1/chat/completions' },
    { raw: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }] }), path: '/v1/chat/completions' },
    { raw: JSON.stringify({ max_tokens: 5 }), path: '/v1/completions' },
    { bytes: new Uint8Array([0x7b, 0x22, 0x70, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), path: '/v1/completions' },
  ]);
  return { kind: 'bad', path: bad.path, raw: bad.raw, bytes: bad.bytes };
}

const requests = Array.from({ length: total }, (_, i) => makeRequest(i));
const counts = { stream: 0, whole: 0, disconnect: 0, bad: 0 };
const failures = [];
const latencies = [];
let completionTokens = 0;
const deadline = Date.now() + maxSeconds * 1000;

function fail(req, what) {
  failures.push(`${req.kind} ${req.path}: ${what}`);
}

function checkUsage(req, u) {
  if (!u || u.total_tokens !== u.prompt_tokens + u.completion_tokens || !(u.completion_tokens > 0)) {
    fail(req, `bad usage ${JSON.stringify(u)}`);
    return;
  }
  completionTokens += u.completion_tokens;
}

async function readSse(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (data && onEvent(data) === false) return reader;
    }
  }
  return null;
}

async function runOne(req) {
  const t0 = Date.now();
  if (req.kind === 'bad') {
    const res = await fetch(url + req.path, { method: 'POST', headers, body: req.bytes ?? req.raw });
    const body = await res.json().catch(() => null);
    if (res.status !== 400 || !body?.error?.message) fail(req, `expected a 400 envelope, got ${res.status} ${JSON.stringify(body)}`);
    return;
  }
  const controller = new AbortController();
  const res = await fetch(url + req.path, { method: 'POST', headers, body: JSON.stringify(req.body), signal: controller.signal });
  if (res.status !== 200) {
    fail(req, `status ${res.status}: ${await res.text()}`);
    return;
  }
  if (req.kind === 'whole') {
    const j = await res.json();
    if (!['stop', 'length'].includes(j.choices?.[0]?.finish_reason)) fail(req, `finish_reason ${JSON.stringify(j.choices)}`);
    checkUsage(req, j.usage);
  } else if (req.kind === 'disconnect') {
    const reader = await readSse(res, () => false);  // hang up after the first event
    controller.abort();
    if (reader) await reader.cancel().catch(() => {});
  } else {
    let finished = false, doneSeen = false, usage = null;
    await readSse(res, (data) => {
      if (data === '[DONE]') {
        doneSeen = true;
        return true;
      }
      const j = JSON.parse(data);
      if (j.error) fail(req, `stream error ${data}`);
      if (j.usage) usage = j.usage;
      if (j.choices?.[0]?.finish_reason) finished = true;
      return true;
    });
    if (!finished || !doneSeen) fail(req, `stream ended without finish_reason/[DONE]`);
    checkUsage(req, usage);
  }
  latencies.push(Date.now() - t0);
}

let next = 0;
async function worker() {
  while (next < requests.length && Date.now() < deadline) {
    const req = requests[next++];
    counts[req.kind]++;
    try {
      await runOne(req);
    } catch (e) {
      if (!(req.kind === 'disconnect' && e.name === 'AbortError')) fail(req, `transport: ${e.message}`);
    }
  }
}

async function metricValues() {
  const res = await fetch(url + '/metrics', { headers });
  const text = await res.text();
  const value = (name) => {
    const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
    return m ? Number(m[1]) : NaN;
  };
  return {
    running: value('frugal:num_requests_running'),
    waiting: value('frugal:num_requests_waiting'),
    free: value('frugal:kv_cache_blocks_free'),
    total: value('frugal:kv_cache_blocks_total'),
    cancelled: value('frugal:request_success_total\\{finished_reason="cancelled"\\}'),
  };
}

const started = Date.now();
await Promise.all(Array.from({ length: clients }, worker));
const elapsed = (Date.now() - started) / 1000;
if (next < requests.length) failures.push(`time bound: only ${next} of ${requests.length} requests issued in ${maxSeconds} s`);

const health = await fetch(url + '/health').catch(() => null);
if (!health || health.status !== 200) failures.push('the server no longer answers /health');
let m = null;
for (let i = 0; i < 200; i++) {
  m = await metricValues();
  if (m.running === 0 && m.waiting === 0 && m.free === m.total) break;
  await new Promise((r) => setTimeout(r, 100));
}
if (!(m.running === 0 && m.waiting === 0 && m.free === m.total)) failures.push(`engine not idle after the run: ${JSON.stringify(m)}`);
if (counts.disconnect > 0 && !(m.cancelled > 0)) failures.push(`no request was cancelled by a disconnect: ${JSON.stringify(m)}`);

latencies.sort((a, b) => a - b);
const q = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : 0);
console.log(`load test: ${next} requests (${JSON.stringify(counts)}) from ${clients} clients in ${elapsed.toFixed(1)} s; ` +
  `latency p50 ${q(0.5)} ms, p99 ${q(0.99)} ms; ${completionTokens} completion tokens (${(completionTokens / elapsed).toFixed(0)}/s); ` +
  `cancelled ${m.cancelled}; final ${JSON.stringify({ running: m.running, waiting: m.waiting, free: m.free, total: m.total })}`);
if (failures.length) {
  console.error(`load test: ${failures.length} failures:`);
  for (const f of failures.slice(0, 20)) console.error('  ' + f);
  process.exit(1);
}
console.log('load test: passed');
