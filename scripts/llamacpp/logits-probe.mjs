#!/usr/bin/env node
// Next-token probability distributions computed by llama.cpp (the prebuilt CPU library that node-llama-cpp
// 3.21.1 ships, see fetch-source.sh) for a fixed token sequence: the cross-engine oracle of
// tests/llamacpp_cross_test.cpp. Never compiles or downloads anything (build: "never", skipDownload).
//
// Usage: node scripts/llamacpp/logits-probe.mjs [--dir DIR] [--threads N] [--kv f32|f16] --tokens 1,2,3 MODEL.gguf...
//   --dir      cache directory holding node_modules/node-llama-cpp (default $FRUGAL_LLAMACPP_DIR or
//              ~/.cache/frugal/llamacpp, as fetch-source.sh)
//   --threads  llama.cpp threads (default 1)
//   --kv       KV cache type (default f32, the golden files' configuration; node-llama-cpp's own default is f16)
//   --tokens   token ids fed at positions 0..T-1, comma-separated, all in ONE batch (one llama_decode)
// Output (stdout, one JSON object):
//   {"engine": "...", "tokens": [...], "models": [{"file": PATH, "n_vocab": V, "probs": [[p_0..p_{V-1}] x T]}]}
//   probs[t][v] = probability that token v follows tokens[0..t]: softmax of the raw logits at temperature 1,
//   no top-k/top-p/min-p truncation (the greedy sampler chain leaves every candidate in place; node-llama-cpp
//   applies the softmax in float32). Row t is indexed by token id.
// Exit status: 0 ok; 2 usage error; 3 node-llama-cpp is not installed in DIR (message on stderr); 1 other errors.
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

function usage(msg) {
  process.stderr.write(`logits-probe: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { dir: process.env.FRUGAL_LLAMACPP_DIR || join(homedir(), ".cache/frugal/llamacpp"), threads: 1, kv: "f32",
    tokens: null, models: [] };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === "--dir") o.dir = value();
    else if (a === "--threads") o.threads = Number(value());
    else if (a === "--kv") o.kv = value();
    else if (a === "--tokens") o.tokens = value().split(",").map((s) => Number(s.trim()));
    else if (a === "-h" || a === "--help") usage("see the header of this file for usage");
    else if (a.startsWith("-")) usage(`unknown option '${a}'`);
    else o.models.push(resolve(a));
  }
  if (!o.tokens || o.tokens.length === 0) usage("--tokens is required");
  if (o.tokens.some((t) => !Number.isInteger(t) || t < 0)) usage("--tokens: expected non-negative integers");
  if (o.models.length === 0) usage("at least one MODEL.gguf is required");
  if (!Number.isInteger(o.threads) || o.threads < 1) usage("--threads: expected a positive integer");
  if (o.kv !== "f32" && o.kv !== "f16") usage(`--kv: expected f32 or f16, got '${o.kv}'`);
  for (const m of o.models) if (!existsSync(m)) usage(`model file ${m} does not exist`);
  return o;
}

// Probabilities of every position of `tokens` for one model file, rows indexed by token id.
async function probe(llama, path, o) {
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const kvType = o.kv.toUpperCase();
  const size = Math.max(o.tokens.length, 8);
  const context = await model.createContext({ contextSize: size, batchSize: size, sequences: 1, threads: o.threads,
    flashAttention: false, experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType });
  const sequence = context.getSequence();
  const input = o.tokens.map((t) => [t, { generateNext: { probabilities: true } }]);
  const results = await sequence.controlledEvaluate(input);
  let nVocab = -1;
  const probs = [];
  for (let t = 0; t < o.tokens.length; ++t) {
    const map = results[t]?.next?.probabilities;
    if (!map) throw new Error(`${path}: no probabilities for position ${t}`);
    if (nVocab < 0) nVocab = map.size;
    if (map.size !== nVocab) throw new Error(`${path}: position ${t} has ${map.size} candidates, expected ${nVocab}`);
    const row = new Array(nVocab).fill(-1);
    for (const [id, p] of map) {
      if (id < 0 || id >= nVocab) throw new Error(`${path}: token id ${id} outside [0, ${nVocab})`);
      row[id] = p;
    }
    if (row.includes(-1)) throw new Error(`${path}: position ${t} misses some token ids`);
    probs.push(row);
  }
  await context.dispose();
  await model.dispose();
  return { file: path, n_vocab: nVocab, probs };
}

const o = parseArgs(process.argv.slice(2));
const index = join(o.dir, "node_modules/node-llama-cpp/dist/index.js");
if (!existsSync(index)) {
  process.stderr.write(`logits-probe: node-llama-cpp is not installed in ${o.dir} (run scripts/install-js-deps.sh)\n`);
  process.exit(3);
}
try {
  const { getLlama, LlamaLogLevel } = await import(pathToFileURL(index).href);
  const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, progressLogs: false,
    logLevel: LlamaLogLevel.error, logger: (level, message) => process.stderr.write(`llama.cpp: ${message}\n`) });
  const models = [];
  for (const path of o.models) models.push(await probe(llama, path, o));
  await llama.dispose();
  const engine = `llama.cpp via node-llama-cpp ${llama.buildType} CPU build, kv ${o.kv}, ${o.threads} thread(s)`;
  process.stdout.write(JSON.stringify({ engine, tokens: o.tokens, models }) + "\n");
} catch (e) {
  process.stderr.write(`logits-probe: ${e?.stack || e}\n`);
  process.exit(1);
}
