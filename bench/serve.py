"""The OpenAI-compatible API (/v1) against the Playground's own path, on the bundled SmolLM2.

    .venv/bin/python bench/serve.py [--prompts 8] [--max-tokens 64] [--clients 1,4,8] [--requests-per-client 3]

One process: the app's server (uvicorn, single-user mode: loopback needs no key) on a free port and a temp data
dir, the model loaded and warmed up before anything is timed.
  stream      - per prompt, one streamed reply through POST /v1/chat/completions (SSE, read with httpx) and the
                same request through engine.stream (what the Playground runs), alternating which goes first;
                tokens/s after the first token (completion tokens - 1 over the time from the first text to the
                end) and time to first token, each averaged over the prompts; overhead_ratio = direct / API.
  concurrency - C clients at once (C in --clients), each sending --requests-per-client non-streamed requests
                (greedy, --max-tokens / 2): requests/s and p50 / p95 latency per C.
  traces      - the cost of storing one trace (llmplay.traces.record, 200 writes) and how many the API stored.
Prompts: bench/generation.py's (the first N AlpacaEval instructions from ../shared/datasets, else its own list).
The last line printed is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODEL = "smollm2-135m-instruct"


def api_stream(client, url: str, prompt: str, max_tokens: int) -> dict:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start, first, tokens = time.perf_counter(), None, 0
    with client.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            elif chunk["choices"] and chunk["choices"][0]["delta"].get("content") and first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    return {"tokens": tokens, "ttft_s": (first or end) - start, "decode_s": end - (first or end)}


def direct_stream(engine, prompt: str, max_tokens: int) -> dict:
    from llmplay.engine import GenerationParams, GenerationRequest

    request = GenerationRequest.of([{"role": "user", "content": prompt}], GenerationParams(max_new_tokens=max_tokens))
    start, first, tokens = time.perf_counter(), None, 0
    for event in engine.stream(MODEL, request):
        if event.delta and first is None:
            first = time.perf_counter()
        if event.done:
            tokens = event.result.completion_tokens
    end = time.perf_counter()
    return {"tokens": tokens, "ttft_s": (first or end) - start, "decode_s": end - (first or end)}


def tok_s(runs: list[dict]) -> float:
    tokens = sum(max(r["tokens"] - 1, 0) for r in runs)
    seconds = sum(r["decode_s"] for r in runs)
    return round(tokens / seconds, 2) if seconds else 0.0


def concurrency(url: str, clients: int, per_client: int, max_tokens: int, prompts_: list[str]) -> dict:
    import httpx

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client_loop(index: int) -> None:
        with httpx.Client(timeout=600) as http:
            for k in range(per_client):
                prompt = prompts_[(index + k) % len(prompts_)]
                body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "temperature": 0,
                        "max_tokens": max_tokens}  # fmt: skip
                start = time.perf_counter()
                response = http.post(url + "/v1/chat/completions", json=body)
                with lock:
                    if response.status_code == 200:
                        latencies.append(time.perf_counter() - start)
                    else:
                        failures.append(f"{response.status_code}: {response.text[:100]}")

    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))] if ordered else None
    return {
        "clients": clients,
        "requests": len(latencies) + len(failures),
        "failed": len(failures),
        "requests_per_s": round(len(latencies) / wall, 3),
        "p50_ms": round(statistics.median(ordered) * 1000) if ordered else None,
        "p95_ms": round(p95 * 1000) if p95 is not None else None,
    }


def trace_write_ms(settings, n: int = 200) -> float:
    from llmplay import traces

    request = [{"role": "user", "content": "How fast is a trace written? " * 8}]
    start = time.perf_counter()
    for i in range(n):
        traces.record(
            settings, id=f"bench-{i}", user="bench", endpoint="chat", model=MODEL, served=MODEL, line=None,
            request=request, params={"max_new_tokens": 64}, reply="A reply of ordinary length. " * 8,
            finish_reason="stop", error=None, prompt_tokens=40, completion_tokens=64, latency_s=1.0, ttft_s=0.1,
            backend="fast float16", stream=True,
        )  # fmt: skip
    return round((time.perf_counter() - start) / n * 1000, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--clients", default="1,4,8")
    ap.add_argument("--requests-per-client", type=int, default=3)
    args = ap.parse_args()

    import httpx

    sys.path.insert(0, str(ROOT / "bench"))  # generation.py imports its sibling _engines as a script does
    from generation import load_prompts

    from llmplay import traces
    from llmplay.engine import Engine
    from llmplay.settings import Settings
    from llmplay.ui.app import launch
    from tests.auth.team import free_port

    work = Path(tempfile.mkdtemp(prefix="llmplay-bench-serve-"))
    settings = Settings(data_dir=work / "data", cache_dir=ROOT / ".cache" / "test-models", default_model=MODEL)
    engine = Engine(settings)
    served = launch(engine, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    url = served.local_url.rstrip("/")
    texts = load_prompts(args.prompts)  # the same prompts as bench/generation.py
    try:
        with httpx.Client() as client:
            direct_stream(engine, "Warm up.", 8)  # load + the fast decoder's conversion, untimed
            api_stream(client, url, "Warm up.", 8)
            api_runs, direct_runs = [], []
            for i, prompt in enumerate(texts):
                order = (api_runs, direct_runs) if i % 2 == 0 else (direct_runs, api_runs)
                for runs in order:
                    if runs is api_runs:
                        runs.append(api_stream(client, url, prompt, args.max_tokens))
                    else:
                        runs.append(direct_stream(engine, prompt, args.max_tokens))
        api_tok_s, direct_tok_s = tok_s(api_runs), tok_s(direct_runs)
        api_ttft = statistics.mean(r["ttft_s"] for r in api_runs)
        direct_ttft = statistics.mean(r["ttft_s"] for r in direct_runs)
        print(f"stream: API {api_tok_s} tok/s (TTFT {api_ttft:.3f} s)")
        print(f"stream: direct {direct_tok_s} tok/s (TTFT {direct_ttft:.3f} s)")
        levels = []
        for clients in [int(c) for c in args.clients.split(",") if c.strip()]:
            level = concurrency(url, clients, args.requests_per_client, max(args.max_tokens // 2, 1), texts)
            levels.append(level)
            print(f"{clients} client(s): {level}")
        stored = len(traces.list_traces(settings, limit=100_000))
        sent = 1 + len(texts) + sum(level["requests"] for level in levels)  # the warm-up, the streams, the rest
        write_ms = trace_write_ms(settings)
        print(f"traces: {stored} stored for {sent} requests sent; one trace write {write_ms} ms")
    finally:
        served.close()
        engine.close()
    by_clients = {level["clients"]: level for level in levels}
    headline = {
        "model": MODEL,
        "prompts": len(texts),
        "max_tokens": args.max_tokens,
        "api_stream_tok_s": api_tok_s,
        "direct_stream_tok_s": direct_tok_s,
        "overhead_ratio": round(direct_tok_s / api_tok_s, 3) if api_tok_s else None,
        "api_ttft_s": round(api_ttft, 3),
        "direct_ttft_s": round(direct_ttft, 3),
        "concurrency": levels,
        "p95_ms_8_clients": by_clients.get(8, {}).get("p95_ms"),
        "trace_write_ms": write_ms,
        "traces_stored": stored,
        "requests_sent": sent,
    }
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
