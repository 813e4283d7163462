"""API traffic and a labeler at once: does streaming API load lose requests or slow the people labeling?

    .venv/bin/python bench/serve_load.py [--clients 8] [--seconds 60] [--max-tokens 64] [--submits 40]

1. Starts ``python app.py`` (bench/load.py's ``start_app``: the bundled default model, a fresh data dir, single-user
   mode, so loopback API calls need no key) and makes a label queue.
2. Idle: one labeler asks for an item and submits a label (llmplay's /api/labeling routes) ``--submits`` times;
   the submit latency's p50 / p95.
3. Loaded: ``--clients`` threads each stream chat completions through ``/v1/chat/completions`` (SSE, greedy,
   ``--max-tokens``) back to back for ``--seconds``, while the same labeler submits ``--submits`` more labels.
4. Reads the database back: every API request that ended with ``[DONE]`` must have exactly one trace under its id
   (``missing``: none; the table's key makes a second impossible, so ``duplicates`` counts ids seen twice by the
   clients); every acknowledged label must be stored.
The last line is one JSON object: ``labeling_p95_idle_ms``, ``labeling_p95_loaded_ms``, ``p95_ratio``,
``requests_sent``, ``requests_done``, ``requests_failed``, ``traces_stored``, ``traces_missing``, ``duplicates``,
``labels_missing`` (and the rest). The issue's bar: nothing lost, p95_ratio <= 2.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import LABELS, MODEL, free_port, make_client, make_queue, percentile, start_app, wait_for  # noqa: E402

PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle stays upright.",
    "List five uses for a paper clip.",
    "Describe a rainy afternoon in a city.",
]


def label(url: str, queue: str, count: int) -> tuple[list[float], list[tuple], list[str]]:
    """One labeler: ``count`` submits; (latencies, acknowledged (item, token), errors)."""
    client = make_client(url, "rest")
    latencies, acked, errors = [], [], []
    try:
        for n in range(count):
            item = client.predict(queue, "lab", api_name="/labeling_next")
            if not item or not item.get("item_id"):
                errors.append(f"no item left after {n}")
                break
            token = uuid.uuid4().hex
            started = time.perf_counter()
            reply = client.predict(queue, "lab", item["item_id"], LABELS[n % 3], token, api_name="/labeling_submit")
            latencies.append(time.perf_counter() - started)
            if str(reply).startswith("✅"):
                acked.append((item["item_id"], token))
            else:
                errors.append(str(reply)[:200])
    finally:
        client.close()
    return latencies, acked, errors


def api_client(url: str, index: int, stop: threading.Event, max_tokens: int, out: dict) -> None:
    with httpx.Client(timeout=600) as client:
        n = 0
        while not stop.is_set():
            body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPTS[(index + n) % len(PROMPTS)]}],
                    "temperature": 0, "max_tokens": max_tokens, "stream": True}  # fmt: skip
            n += 1
            out["sent"] += 1
            trace_id, done = None, False
            try:
                with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
                    if response.status_code != 200:
                        out["failed"].append(f"HTTP {response.status_code}: {response.read()[:200]!r}")
                        continue
                    trace_id = response.headers.get("x-llmplay-trace-id")
                    for line in response.iter_lines():
                        if line == "data: [DONE]":
                            done = True
            except httpx.HTTPError as exc:
                out["failed"].append(f"{type(exc).__name__}: {exc}")
                continue
            if done and trace_id:
                out["done"].append(trace_id)
            else:
                out["failed"].append(f"ended without [DONE] ({trace_id})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--submits", type=int, default=40, help="labels submitted idle, and again under load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmplay-bench-serve-load-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_app(data_dir, port)
        try:
            wait_for(url, proc)
            queue = make_queue(data_dir / "llmplay.db", 2 * args.submits + 10, k=1)
            httpx.post(url + "/v1/chat/completions", timeout=600, json={  # load and warm the model first
                "model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8})  # fmt: skip
            idle, acked, errors = label(url, queue, args.submits)

            stop = threading.Event()
            out = {"sent": 0, "done": [], "failed": []}
            threads = [threading.Thread(target=api_client, args=(url, i, stop, args.max_tokens, out), daemon=True)
                       for i in range(args.clients)]  # fmt: skip
            for t in threads:
                t.start()
            time.sleep(3)  # the streams are running before the labeler starts
            started = time.perf_counter()
            loaded, acked2, errors2 = label(url, queue, args.submits)
            while time.perf_counter() - started < args.seconds:
                time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join(timeout=600)
            con = sqlite3.connect(data_dir / "llmplay.db")
            stored = {r[0] for r in con.execute("select id from api_traces")}
            labels_missing = sum(
                1 for item_id, token in acked + acked2
                if not con.execute("select 1 from feedback_responses where item_id = ? and client_token = ? "
                                   "and status = 'submitted'", [item_id, token]).fetchone()
            )  # fmt: skip
            con.close()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    for line in (errors + errors2 + out["failed"])[:10]:
        print("error:", line)
    done = out["done"]
    p95_idle, p95_loaded = percentile(idle, 0.95) * 1000, percentile(loaded, 0.95) * 1000
    result = {
        "clients": args.clients,
        "seconds": args.seconds,
        "labeling_p50_idle_ms": round(statistics.median(idle) * 1000, 1),
        "labeling_p95_idle_ms": round(p95_idle, 1),
        "labeling_p50_loaded_ms": round(statistics.median(loaded) * 1000, 1),
        "labeling_p95_loaded_ms": round(p95_loaded, 1),
        "p95_ratio": round(p95_loaded / p95_idle, 2),
        "requests_sent": out["sent"],
        "requests_done": len(done),
        "requests_failed": len(out["failed"]),
        "traces_stored": len(stored),
        "traces_missing": sum(1 for t in done if t not in stored),
        "duplicates": len(done) - len(set(done)),
        "labels_acknowledged": len(acked) + len(acked2),
        "labels_missing": labels_missing,
        "label_errors": len(errors) + len(errors2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
