#!/usr/bin/env python3
"""Replays a fixed request mix against an OpenAI-compatible server at one concurrency and prints figures.

Usage: serve_client.py --url http://127.0.0.1:8080 --concurrency 16 [--requests N] [--max-tokens 64]
                       [--prompt-tokens 32,128,512] [--api-key KEY] [--seed 1] [--label NAME] [--json OUT]

Each request is a streaming POST /v1/completions (temperature 0, ignore_eos, stream_options.include_usage)
whose prompt is a deterministic sequence of words sized to about the chosen token count; the mix of prompt
lengths and its order depend only on --seed, so two servers get exactly the same requests. `concurrency`
client threads keep that many requests in flight until all are done.

Figures: aggregate generation tokens/s (completion tokens of all requests / wall time of the level), time to
first token p50/p99 (request sent -> first text chunk), inter-token latency p50/p99 (gaps between text
chunks, one per token for frugal and llama.cpp), end-to-end latency p50/p99, and with --cost-per-hour the
price of a million generated tokens at that throughput. Standard library only.
"""
import argparse
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

WORDS = ("the quick brown fox jumps over a lazy dog while seven wise owls count stars above quiet "
         "hills near an old mill where rivers bend and children laugh at small boats").split()


def make_prompts(n, lengths, seed):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        target = lengths[rng.randrange(len(lengths))]
        words = [WORDS[rng.randrange(len(WORDS))] for _ in range(max(1, int(target * 0.8)))]
        out.append(" ".join(words))
    return out


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def one_request(url, api_key, model, prompt, max_tokens, timeout):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    body = json.dumps({
        "model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True,
        "ignore_eos": True, "stream_options": {"include_usage": True},
    })
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = "Bearer " + api_key
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", body=body, headers=headers)
    resp = conn.getresponse()
    if resp.status != 200:
        text = resp.read().decode(errors="replace")
        conn.close()
        return {"error": f"HTTP {resp.status}: {text[:200]}"}
    first, last, gaps, chunks, usage = None, None, [], 0, None
    while True:
        line = resp.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        msg = json.loads(data)
        if msg.get("usage"):
            usage = msg["usage"]
        choices = msg.get("choices") or []
        if choices and choices[0].get("text"):
            now = time.perf_counter()
            if first is None:
                first = now
            else:
                gaps.append(now - last)
            last = now
            chunks += 1
    t1 = time.perf_counter()
    conn.close()
    completion = usage["completion_tokens"] if usage else chunks
    prompt_tokens = usage["prompt_tokens"] if usage else 0
    return {"ttft": (first - t0) if first else float("nan"), "itl": gaps, "e2e": t1 - t0,
            "completion_tokens": completion, "prompt_tokens": prompt_tokens,
            "cost_usd": (usage or {}).get("cost_usd")}


def run_level(args, prompts):
    results, lock, next_i = [], threading.Lock(), [0]

    def worker():
        while True:
            with lock:
                i = next_i[0]
                next_i[0] += 1
            if i >= len(prompts):
                return
            try:
                r = one_request(args.url, args.api_key, args.model, prompts[i], args.max_tokens, args.timeout)
            except Exception as e:  # noqa: BLE001 - reported, never hidden
                r = {"error": repr(e)}
            with lock:
                results.append(r)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = [r for r in results if "error" not in r]
    errors = [r["error"] for r in results if "error" in r]
    gen = sum(r["completion_tokens"] for r in ok)
    prompt = sum(r["prompt_tokens"] for r in ok)
    itl = [g for r in ok for g in r["itl"]]
    out = {
        "label": args.label, "concurrency": args.concurrency, "requests": len(prompts), "ok": len(ok),
        "errors": len(errors), "first_error": errors[0] if errors else None, "wall_s": wall,
        "prompt_tokens": prompt, "generation_tokens": gen, "gen_tokens_per_s": gen / wall if wall > 0 else 0,
        "ttft_p50_s": percentile([r["ttft"] for r in ok], 50), "ttft_p99_s": percentile([r["ttft"] for r in ok], 99),
        "itl_p50_s": percentile(itl, 50), "itl_p99_s": percentile(itl, 99),
        "e2e_p50_s": percentile([r["e2e"] for r in ok], 50), "e2e_p99_s": percentile([r["e2e"] for r in ok], 99),
    }
    if args.cost_per_hour is not None and gen > 0:
        out["usd_per_million_gen_tokens"] = args.cost_per_hour / 3600.0 * wall / gen * 1e6
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--model", default="default")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--requests", type=int, default=0, help="requests at this level (default 4 x concurrency, >= 8)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompt-tokens", default="32,128,512", help="prompt length mix (approximate tokens)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--cost-per-hour", type=float, default=None)
    ap.add_argument("--label", default="server")
    ap.add_argument("--json", default="", help="append the result as one JSON line to this file")
    args = ap.parse_args()
    n = args.requests or max(8, 4 * args.concurrency)
    prompts = make_prompts(n, [int(x) for x in args.prompt_tokens.split(",")], args.seed)
    r = run_level(args, prompts)
    print(json.dumps(r))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(r) + "\n")
    return 0 if r["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
