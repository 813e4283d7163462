"""Hard kills under load: no response acknowledged to a labeler is lost, and the database stays intact.

    .venv/bin/python bench/crash.py [--rounds 3] [--labelers 8] [--load-s 2.5] [--items 400]

1. A fresh data dir with a label queue of ``--items`` items that every labeler answers (k = ``--labelers``),
   written with the feedback store before the app starts.
2. The app as a real child process (``python -m llmplay.cli --data-dir D serve``, host and port from
   GRADIO_SERVER_NAME / GRADIO_SERVER_PORT), ready when ``/health`` answers 200.
3. Each round: ``--labelers`` threads, each with its own HTTP client, ask for their next item
   (``POST /api/labeling/next``) and submit a label with a fresh client_token (``/api/labeling/submit``); every
   reply that comes back 200 is an acknowledged response (its token and response id are kept). After
   ``--load-s`` seconds of this the app gets SIGKILL (``kill -9``), mid-write.
4. The app restarts on the same data dir; then ``PRAGMA integrity_check`` and a look-up of every acknowledged
   response so far (by client_token: same response id, same item and labeler, submitted).
The default model still preloads at each start (ui/app.py warm_default_model, from the converted-model cache in
.cache/test-models): it runs in a background thread and the bench waits for /health, not for the model.
The last line is one JSON object: rounds, acked, present, lost, integrity_ok (and the rest).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
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

from load import LABELS, free_port, make_queue, wait_for  # noqa: E402  (shared with bench/load.py)

QUEUE = "crash-bench"


def start_app(data_dir: Path, port: int, log_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMPLAY_BACKUP")}
    env |= {
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
    }
    env.setdefault("LLMPLAY_CACHE_DIR", str(ROOT / ".cache" / "test-models"))
    log = open(log_path, "ab")  # noqa: SIM115  (the child writes to it until it dies)
    cmd = [sys.executable, "-m", "llmplay.cli", "--data-dir", str(data_dir), "serve"]
    # Its own session: the SIGKILL hits the app only, never this script.
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)


class Labeler(threading.Thread):
    """Submits until ``stop``; keeps (token, response_id, item_id, labeler) of every 200 reply."""

    def __init__(self, url: str, name: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.url, self.name_, self.stop = url, name, stop
        self.acked: list[tuple[str, int, int, str]] = []
        self.refused: list[str] = []  # a 4xx/5xx answer while the app was up
        self.broken = 0  # calls cut off by the kill (no answer: not acknowledged)

    def run(self) -> None:
        import httpx

        with httpx.Client(timeout=10) as http:
            while not self.stop.is_set():
                try:
                    item = http.post(f"{self.url}/api/labeling/next", json={"queue": QUEUE, "labeler": self.name_})
                    body = item.json() if item.status_code == 200 else {}
                    if not body.get("item_id"):  # none left (raise --items) or refused
                        self.refused.append(f"next: {item.status_code} {item.text[:200] or 'no item left'}")
                        return
                    token = uuid.uuid4().hex
                    reply = http.post(
                        f"{self.url}/api/labeling/submit",
                        json={"queue": QUEUE, "labeler": self.name_, "item_id": body["item_id"],
                              "value": LABELS[len(self.acked) % 3], "client_token": token},
                    )  # fmt: skip
                except httpx.HTTPError:
                    self.broken += 1
                    self.stop.wait(0.05)
                    continue
                if reply.status_code == 200:
                    self.acked.append((token, reply.json()["response_id"], body["item_id"], self.name_))
                else:
                    self.refused.append(f"submit: {reply.status_code} {reply.text[:200]}")


def check(db_path: Path, acked: list[tuple[str, int, int, str]]) -> tuple[bool, str, int, int]:
    """(integrity ok, integrity_check text, acknowledged responses present, submitted rows in the database)."""
    con = sqlite3.connect(db_path, timeout=30)
    try:
        result = [r[0] for r in con.execute("pragma integrity_check")]
        present = 0
        for token, response_id, item_id, labeler in acked:
            row = con.execute(
                "select id, item_id, labeler, status from feedback_responses where client_token = ?", [token]
            ).fetchone()
            present += row == (response_id, item_id, labeler, "submitted")
        stored = con.execute("select count(*) from feedback_responses where status = 'submitted'").fetchone()[0]
    finally:
        con.close()
    return result == ["ok"], "; ".join(result[:3]), present, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="kill -9 and restart this many times")
    parser.add_argument("--labelers", type=int, default=8)
    parser.add_argument("--load-s", type=float, default=2.5, help="seconds of load before each kill")
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--keep", help="keep the data dir here instead of a temp folder")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llmplay-bench-crash-") as tmp:
        data_dir = Path(args.keep) if args.keep else Path(tmp) / "data"
        log_path = Path(tmp) / "app.log"
        db_path = data_dir / "llmplay.db"
        make_queue(db_path, args.items, k=args.labelers, name=QUEUE)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_app(data_dir, port, log_path)
        first_start_s = wait_for(url, proc, timeout=240, path="/health", poll_s=0.2)
        acked: list[tuple[str, int, int, str]] = []
        rows, refused, broken, restarts = [], [], 0, []
        try:
            for n in range(1, args.rounds + 1):
                stop = threading.Event()
                labelers = [Labeler(url, f"labeler-{i:02d}", stop) for i in range(args.labelers)]
                for labeler in labelers:
                    labeler.start()
                time.sleep(args.load_s)
                os.kill(proc.pid, signal.SIGKILL)  # mid-load: submits are in flight
                proc.wait()
                stop.set()
                for labeler in labelers:
                    labeler.join(timeout=30)
                round_acked = [a for labeler in labelers for a in labeler.acked]
                acked += round_acked
                refused += [r for labeler in labelers for r in labeler.refused]
                broken += sum(labeler.broken for labeler in labelers)
                proc = start_app(data_dir, port, log_path)
                restarts.append(wait_for(url, proc, timeout=240, path="/health", poll_s=0.2))
                ok, text, present, stored = check(db_path, acked)
                lost = len(acked) - present
                rows.append((n, len(round_acked), len(acked), present, lost, text, restarts[-1], stored))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if refused:
            print("refused:", *refused[:5], sep="\n  ")
            print(log_path.read_text(errors="replace")[-3000:])
    header = ("round", "acked", "acked_total", "present", "lost", "integrity", "restart_s", "stored")
    print("  ".join(f"{h:>11}" for h in header))
    for row in rows:
        print("  ".join(f"{v:>11.1f}" if isinstance(v, float) else f"{v!s:>11}" for v in row))
    final = rows[-1]
    result = {
        "rounds": args.rounds,
        "labelers": args.labelers,
        "acked": final[2],
        "present": final[3],
        "lost": final[4],
        "integrity_ok": all(r[5] == "ok" for r in rows),
        # Committed but never acknowledged (the kill cut the reply off): allowed, and not counted as acked.
        "unacked_stored": final[7] - final[2],
        "cut_off_calls": broken,
        "refused": len(refused),
        "acked_per_s": round(final[2] / (args.rounds * args.load_s), 1),
        "first_start_s": round(first_start_s, 1),
        "restart_s": [round(s, 1) for s in restarts],
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
