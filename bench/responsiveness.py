"""Is the app still usable while a training job runs? Labeling submits, page opens and a Playground reply, idle
and during a LoRA job, against the app as its own process.

    .venv/bin/python bench/responsiveness.py [--seconds 60] [--labelers 4] [--nice 10]

1. Starts ``python app.py`` on a free loopback port with a fresh data dir (the bundled default model) and a
   label queue in its SQLite file (bench/load.py's helpers).
2. Idle phase (``--seconds``): ``--labelers`` threads, each asking for its next item and submitting a label
   through the app's HTTP API (``/api/labeling/next`` + ``/submit``) with a think time of ``--think`` s
   between items, as people do; a page opener fetching what a browser needs before the page shows (``GET /``
   and Gradio's ``/config``) every second; a chat client asking the Playground (``/chat``, 32 new tokens,
   greedy) one reply after another with ``--chat-think`` s between them: time to first token and tokens/s.
3. Starts a training job the way the app's job runner does (``python -m llmplay.training.entry CONFIG`` with
   the runner's environment, ``LLMPLAY_JOB_NICE`` = ``--nice``): SmolLM2-135M + LoRA on 500 Financial
   PhraseBank rows, enough steps to outlast the phase. Once its first step is logged, the training phase
   measures the same for as long.
4. Prints p50 / p95 per phase; the last line is one JSON object with ``p95_idle_ms`` and ``p95_training_ms``
   (labeling submit), ``open_p95_idle_ms`` / ``open_p95_training_ms``, ``chat_ttft_*_s``,
   ``chat_tok_s_*``, and the job's steps in the phase (so a starved job shows too).

Run it alone on a quiet machine: a second program on the two cores is a second "training job".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _data import fpb_split  # noqa: E402
from load import LABELS, MODEL, RestApi, free_port, make_queue, percentile, start_app, wait_for  # noqa: E402


class Phase:
    """What the clients measured in one phase (lists of seconds; errors as text)."""

    def __init__(self) -> None:
        self.submit: list[float] = []
        self.open: list[float] = []
        self.ttft: list[float] = []
        self.tok_s: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def add(self, kind: str, value) -> None:
        with self.lock:
            getattr(self, kind).append(value)


def labeler(url: str, queue: str, name: str, phase: Phase, stop: threading.Event, think_s: float) -> None:
    client = RestApi(url)
    try:
        done = 0
        while not stop.is_set():
            item = client.predict(queue, name, api_name="/labeling_next")
            if not item or not item.get("item_id"):
                phase.add("errors", f"{name}: no item left after {done}")
                return
            started = time.perf_counter()
            reply = client.predict(queue, name, item["item_id"], LABELS[done % 3], uuid.uuid4().hex,
                                   api_name="/labeling_submit")  # fmt: skip
            phase.add("submit", time.perf_counter() - started)
            if not str(reply).startswith("✅"):
                phase.add("errors", f"{name}: {reply}")
            done += 1
            stop.wait(think_s)
    except Exception as exc:  # counted, never hidden
        phase.add("errors", f"{name}: {type(exc).__name__}: {exc}")
    finally:
        client.close()


def page_opener(url: str, phase: Phase, stop: threading.Event) -> None:
    import httpx

    with httpx.Client(timeout=60) as http:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                for path in ("/", "/config"):
                    http.get(url + path).raise_for_status()
                phase.add("open", time.perf_counter() - started)
            except Exception as exc:
                phase.add("errors", f"open: {type(exc).__name__}: {exc}")
            stop.wait(1.0)


def chatter(url: str, phase: Phase, stop: threading.Event, think_s: float) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            first = None
            job = client.submit("Name three colours of the rainbow.", [], MODEL, "", 32, 0.0, 1.0, 0, 1.0, "", "",
                                "auto", api_name="/chat")  # fmt: skip
            for out in job:  # (chatbot, status): the first update whose reply has text is the first token
                history = out[0] if isinstance(out, list | tuple) and out else None
                last = history[-1] if isinstance(history, list) and history else {}
                if first is None and isinstance(last, dict) and last.get("role") == "assistant" and last.get("content"):
                    first = time.perf_counter()
            final = job.result()
            status = str(final[-1]) if isinstance(final, list | tuple) else str(final)
            tok_s = _tokens(status)
            if first is None or tok_s is None:
                phase.add("errors", f"chat: no reply ({status[:120]})")
                continue
            phase.add("ttft", first - started)
            phase.add("tok_s", tok_s)
            stop.wait(think_s)  # the person reads the reply before asking again
    except Exception as exc:
        phase.add("errors", f"chat: {type(exc).__name__}: {exc}")
    finally:
        client.close()


def _tokens(status: str) -> float | None:
    """The reply's tokens/s as the Playground's status line shows it ("**31.2 tokens/s** · ...")."""
    found = re.search(r"([0-9.]+) tokens/s", status)
    return float(found.group(1)) if found else None


def warm_up(url: str, queue: str) -> None:
    """One whole reply and one label before measuring: the first reply loads the model (not what is measured)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    try:
        client.predict("Hi", [], MODEL, "", 8, 0.0, 1.0, 0, 1.0, "", "", "auto", api_name="/chat")
    finally:
        client.close()
    rest = RestApi(url)
    try:
        item = rest.predict(queue, "warm", api_name="/labeling_next")
        rest.predict(queue, "warm", item["item_id"], LABELS[0], uuid.uuid4().hex, api_name="/labeling_submit")
    finally:
        rest.close()


def measure(url: str, queue: str, labelers: int, seconds: float, think_s: float, tag: str, chat_think_s: float):
    phase, stop = Phase(), threading.Event()
    threads = [threading.Thread(target=labeler, args=(url, queue, f"{tag}-{i}", phase, stop, think_s))
               for i in range(labelers)]  # fmt: skip
    threads += [threading.Thread(target=page_opener, args=(url, phase, stop)),
                threading.Thread(target=chatter, args=(url, phase, stop, chat_think_s))]  # fmt: skip
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    return phase


def start_training(data_dir: Path, nice: int, steps: int) -> tuple[subprocess.Popen, Path]:
    """A LoRA job on 500 FPB rows, started as the app's job runner starts one (its environment, its niceness)."""
    import pandas as pd
    import yaml

    from llmplay.datasets import ColumnMapping, save_dataset
    from llmplay.settings import Settings
    from llmplay.training.jobs import settings_env

    settings = Settings.from_env(data_dir=str(data_dir))
    rows, _ = fpb_split(0, 500, 0)
    save_dataset(settings, "fpb-train", pd.DataFrame(rows, columns=["text", "label"], dtype=object),
                 ColumnMapping({"text": "text"}, "label"))  # fmt: skip
    config = {
        "name": "responsiveness-lora",
        "base_model": MODEL,
        "max_steps": steps,
        "logging_steps": 1,
        "data": {"source": "dataset", "dataset": "fpb-train", "template": "financial-sentiment",
                 "validation_fraction": 0.0},
    }  # fmt: skip
    path = data_dir / "job.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    env = {**os.environ, **settings_env(settings, settings.prompts_dir), "TOKENIZERS_PARALLELISM": "false",
           "PYTHONUNBUFFERED": "1", "LLMPLAY_JOB_NICE": str(nice)}  # fmt: skip
    log = data_dir / "job.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llmplay.training.entry", str(path)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    return proc, log


def job_steps(db_path: Path) -> int:
    import sqlite3

    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        row = con.execute("select max(step) from training_progress").fetchone()
    except sqlite3.Error:
        return 0
    finally:
        con.close()
    return int(row[0] or 0)


def summary(phase: Phase) -> dict:
    def ms(values: list[float], q: float) -> float | None:
        return round(percentile(values, q) * 1000, 1) if values else None

    return {
        "submits": len(phase.submit),
        "submit_p50_ms": ms(phase.submit, 0.5),
        "submit_p95_ms": ms(phase.submit, 0.95),
        "open_p50_ms": ms(phase.open, 0.5),
        "open_p95_ms": ms(phase.open, 0.95),
        "chat_replies": len(phase.ttft),
        "chat_ttft_s": round(sorted(phase.ttft)[len(phase.ttft) // 2], 2) if phase.ttft else None,
        "chat_tok_s": round(sum(phase.tok_s) / len(phase.tok_s), 1) if phase.tok_s else None,
        "errors": phase.errors[:5],
        "error_count": len(phase.errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument("--labelers", type=int, default=4)
    parser.add_argument("--think", type=float, default=0.5, help="seconds a labeler waits between items")
    parser.add_argument("--chat-think", type=float, default=2.0, help="seconds between Playground replies")
    parser.add_argument("--nice", type=int, default=10, help="the training process's niceness (the app's default)")
    args = parser.parse_args()
    fpb_split(0, 1, 0)  # exits with a clear message when the shared data sets are missing
    with tempfile.TemporaryDirectory(prefix="llmplay-bench-responsive-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        app = start_app(data_dir, port)
        job = None
        try:
            wait_for(url, app)
            queue = make_queue(data_dir / "llmplay.db", items=2000, k=1)
            warm_up(url, queue)
            idle = measure(url, queue, args.labelers, args.seconds, args.think, "idle", args.chat_think)
            job, log = start_training(data_dir, args.nice, steps=100_000)
            deadline = time.monotonic() + 600
            while job_steps(data_dir / "llmplay.db") < 1:
                if job.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise SystemExit(f"the training job did not start training:\n{tail}")
                time.sleep(1)
            steps_before = job_steps(data_dir / "llmplay.db")
            busy = measure(url, queue, args.labelers, args.seconds, args.think, "busy", args.chat_think)
            steps_in_phase = job_steps(data_dir / "llmplay.db") - steps_before
        finally:
            if job is not None and job.poll() is None:
                os.killpg(job.pid, 9)
            app.terminate()
            try:
                app.wait(timeout=30)
            except subprocess.TimeoutExpired:
                app.kill()
    rows = {"idle": summary(idle), "training": summary(busy)}
    print(f"{'phase':10} {'submits':>8} {'p50 ms':>8} {'p95 ms':>8} {'open p95':>9} {'ttft s':>7} {'tok/s':>6}")
    for name, row in rows.items():
        print(f"{name:10} {row['submits']:>8} {row['submit_p50_ms']!s:>8} {row['submit_p95_ms']!s:>8} "
              f"{row['open_p95_ms']!s:>9} {row['chat_ttft_s']!s:>7} {row['chat_tok_s']!s:>6}")  # fmt: skip
        if row["errors"]:
            print(f"  {row['error_count']} error(s), e.g. {row['errors'][0]}")
    print(f"training steps during the phase: {steps_in_phase} (niceness {args.nice})")
    result = {
        "p95_idle_ms": rows["idle"]["submit_p95_ms"],
        "p95_training_ms": rows["training"]["submit_p95_ms"],
        "open_p95_idle_ms": rows["idle"]["open_p95_ms"],
        "open_p95_training_ms": rows["training"]["open_p95_ms"],
        "chat_ttft_idle_s": rows["idle"]["chat_ttft_s"],
        "chat_ttft_training_s": rows["training"]["chat_ttft_s"],
        "chat_tok_s_idle": rows["idle"]["chat_tok_s"],
        "chat_tok_s_training": rows["training"]["chat_tok_s"],
        "training_steps_in_phase": steps_in_phase,
        "job_nice": args.nice,
        "errors": rows["idle"]["error_count"] + rows["training"]["error_count"],
        "phases": rows,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
