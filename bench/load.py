"""Many labelers at once: the app as its own process, simulated labelers submitting through its HTTP API while a
Playground reply streams.

    .venv/bin/python bench/load.py [--labelers 20] [--responses 50] [--items 50]

1. Starts ``python app.py`` on a free loopback port with a fresh data dir (the bundled default model).
2. Makes a label queue with ``--items`` items and k = ``--labelers`` (every labeler answers every item, so each
   item takes its k responses from k different people at the same time) in the app's SQLite file.
3. ``--labelers`` threads, each with its own client of the app's HTTP API (default: llmplay's routes
   ``/api/labeling/...``; ``--client http``: the same calls through Gradio's REST API and queue; ``--client
   gradio``: gradio_client, see ``HttpApi`` for why it is not the default), each asks for its next item
   (``/labeling_next``) and submits a label (``/labeling_submit``, with a client token) until it has submitted
   ``--responses``. Meanwhile another client keeps a Playground reply streaming (``/chat``, 256 new tokens), so
   labeling competes with generation.
4. Reads the database back: stored responses, duplicates ((item, labeler) pairs or client tokens stored more
   than once), errors (any reply that is not a success, or an exception), and the submit latency as the client
   measures it (p50 / p95, one HTTP round trip each).
The last line is one JSON object: submitted, stored, duplicates, errors, p50_ms, p95_ms (and the rest).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LABELS = ["positive", "negative", "neutral"]
MODEL = "smollm2-135m-instruct"  # the app's bundled default: the reply that streams during the load


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(data_dir: Path, port: int) -> subprocess.Popen:
    env = os.environ | {
        "LLMPLAY_DATA_DIR": str(data_dir),
        "LLMPLAY_PORT": str(port),
        "LLMPLAY_HOST": "127.0.0.1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    env.setdefault("LLMPLAY_CACHE_DIR", str(ROOT / ".cache" / "test-models"))
    log = open(data_dir / "app.log", "wb")  # noqa: SIM115  (the child writes to it until it ends)
    return subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log, stderr=log)


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 300, path: str = "/config", poll_s: float = 0.5):
    """Seconds until ``url + path`` answers 200 (bench/crash.py waits for /health, not for the UI)."""
    import httpx

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with {proc.returncode} before it served (see its log)")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(poll_s)
    raise SystemExit(f"the app did not answer {path} in time")


def make_queue(db_path: Path, items: int, k: int, name: str = "load-bench") -> str:
    from llmplay.feedback import store
    from llmplay.store import connect

    with connect(db_path) as db:
        queue = store.create_queue(db, name, "label", labels=LABELS, k=k, user="bench")
        rows = [{"source": "cli", "prompt": f"Sentence {i}: is this good news?", "output": LABELS[i % 3]}
                for i in range(items)]  # fmt: skip
        store.add_items(db, queue, rows, user="bench")
    return queue.name


class HttpApi:
    """Gradio's REST API (``POST /gradio_api/call/<api>`` -> event id, then its result as server-sent events):
    what a script calls over HTTP. Cheap on the client: 3 ms of CPU per call, where gradio_client spends ~74 ms
    (measured here), so 20 gradio_client labelers on this machine's 2 cores would mostly measure themselves."""

    def __init__(self, url: str):
        import httpx

        self.url, self.http = url, httpx.Client(timeout=60)

    def predict(self, *data, api_name: str):
        api = api_name.lstrip("/")
        event = self.http.post(f"{self.url}/gradio_api/call/{api}", json={"data": list(data)})
        event.raise_for_status()
        event_id = event.json()["event_id"]
        kind = None
        with self.http.stream("GET", f"{self.url}/gradio_api/call/{api}/{event_id}") as reply:
            for line in reply.iter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind in ("complete", "error"):
                    if kind == "error":
                        raise RuntimeError(f"{api}: {line[5:].strip()}")
                    return json.loads(line[5:])[0]
        raise RuntimeError(f"{api}: the stream ended without a result")

    def close(self) -> None:
        self.http.close()


class RestApi:
    """llmplay's own HTTP routes (``/api/labeling/next``, ``/api/labeling/submit``: llmplay/api/rest.py), which
    skip Gradio's event queue; same arguments and answers as the Gradio endpoints."""

    def __init__(self, url: str):
        import httpx

        self.url, self.http = url, httpx.Client(timeout=60)

    def predict(self, *data, api_name: str):
        if api_name == "/labeling_next":
            reply = self.http.post(f"{self.url}/api/labeling/next", json=dict(zip(("queue", "labeler"), data)))
            return reply.json()
        keys = ("queue", "labeler", "item_id", "value", "client_token")
        reply = self.http.post(f"{self.url}/api/labeling/submit", json=dict(zip(keys, data)))
        return "✅ stored" if reply.status_code == 200 else f"⚠️ {reply.json().get('error')}"

    def close(self) -> None:
        self.http.close()


def make_client(url: str, kind: str):
    if kind == "rest":
        return RestApi(url)
    if kind == "gradio":
        from gradio_client import Client

        return Client(url, verbose=False)
    return HttpApi(url)


def labeler(url: str, queue: str, name: str, count: int, kind: str = "http") -> tuple[list, list, list]:
    """One labeler with its own client: (latencies, errors, submitted)."""
    latencies, errors, submitted = [], [], []
    client = make_client(url, kind)
    try:
        done = 0
        while done < count:
            item = client.predict(queue, name, api_name="/labeling_next")
            if not item or not item.get("item_id"):
                errors.append(f"{name}: no item left after {done}")
                break
            token = uuid.uuid4().hex
            started = time.perf_counter()
            reply = client.predict(queue, name, item["item_id"], LABELS[done % 3], token, api_name="/labeling_submit")
            latencies.append(time.perf_counter() - started)
            if not str(reply).startswith("✅"):
                errors.append(f"{name}: {reply}")
                continue
            submitted.append((item["item_id"], name, token))
            done += 1
    except Exception as exc:  # counted, never hidden
        errors.append(f"{name}: {type(exc).__name__}: {exc}")
    finally:
        client.close()
    return latencies, errors, submitted


def streamer(url: str, stop: threading.Event, stats: dict) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    try:
        while not stop.is_set():
            job = client.submit(
                "Write a long story about a lighthouse keeper.", [], MODEL, "", 256, 0.0, 1.0, 0, 1.0, "", "", "auto",
                api_name="/chat",
            )  # fmt: skip
            for out in job:
                stats["updates"] = stats.get("updates", 0) + 1
                stats["last_status"] = str(out[-1])[:200] if isinstance(out, list | tuple) else str(out)[:200]
                if stop.is_set():
                    job.cancel()
                    break
            if not stop.is_set():
                job.result()  # raises what the app answered if the reply failed
            stats["replies"] = stats.get("replies", 0) + 1
    except Exception as exc:
        stats["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        client.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelers", type=int, default=20)
    parser.add_argument("--responses", type=int, default=50, help="per labeler")
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument(
        "--client", choices=["rest", "http", "gradio"], default="rest", help="see RestApi, HttpApi (Gradio's REST)"
    )
    args = parser.parse_args()
    if args.responses > args.items:
        raise SystemExit("--responses cannot exceed --items: a labeler answers an item once")
    with tempfile.TemporaryDirectory(prefix="llmplay-bench-load-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_app(data_dir, port)
        try:
            wait_for(url, proc)
            queue = make_queue(data_dir / "llmplay.db", args.items, k=args.labelers)
            stop, stream_stats = threading.Event(), {}
            stream = threading.Thread(target=streamer, args=(url, stop, stream_stats), daemon=True)
            stream.start()
            time.sleep(3)  # the reply is streaming before the labelers start
            latencies: list[float] = []
            errors: list[str] = []
            submitted: list[tuple] = []
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.labelers) as pool:
                futures = [
                    pool.submit(labeler, url, queue, f"labeler-{n:02d}", args.responses, args.client)
                    for n in range(args.labelers)
                ]
                for future in futures:
                    lat, err, sub = future.result()
                    latencies += lat
                    errors += err
                    submitted += sub
            wall = time.perf_counter() - started
            stop.set()
            stream.join(timeout=60)
            con = sqlite3.connect(data_dir / "llmplay.db")
            stored = con.execute("select count(*) from feedback_responses where status = 'submitted'").fetchone()[0]
            pairs = con.execute(
                "select count(*) from (select item_id, labeler from feedback_responses"
                " group by item_id, labeler having count(*) > 1)"
            ).fetchone()[0]
            tokens = con.execute(
                "select count(*) from (select client_token from feedback_responses where client_token is not null"
                " group by client_token having count(*) > 1)"
            ).fetchone()[0]
            over_k = con.execute(
                "select count(*) from (select item_id from feedback_responses where status = 'submitted'"
                " group by item_id having count(*) > ?)",
                [args.labelers],
            ).fetchone()[0]
            missing = sum(
                1
                for item_id, name, token in submitted
                if not con.execute(
                    "select 1 from feedback_responses where item_id = ? and labeler = ? and client_token = ?",
                    [item_id, name, token],
                ).fetchone()
            )
            con.close()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    for line in errors[:10]:
        print("error:", line)
    result = {
        "labelers": args.labelers,
        "client": args.client,
        "submitted": len(submitted),
        "stored": stored,
        "duplicates": pairs + tokens,
        "missing": missing,
        "over_k": over_k,
        "errors": len(errors),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "wall_s": round(wall, 2),
        "responses_per_s": round(len(submitted) / wall, 1) if wall else None,
        "stream_replies": stream_stats.get("replies", 0),
        "stream_updates": stream_stats.get("updates", 0),
        "stream_error": stream_stats.get("error"),
        "stream_last_status": stream_stats.get("last_status"),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
