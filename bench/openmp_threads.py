"""What other threads' idle OpenMP workers cost torch work, with and without giving them back (llmplay/openmp.py).

    .venv/bin/python bench/openmp_threads.py [--threads 3] [--prompts 8] [--tokens 48] [--repeats 3]

One process, bundled SmolLM2 (float32, transformers batches: Engine.generate), greedy, on 2+ cores:
  alone       - generate in the main thread, no other thread has run torch
  kept        - the same after ``--threads`` other threads each ran one parallel torch op and kept their OpenMP
                workers (as request threads did before): libgomp then has more workers than cores and stops
                letting them spin between ops
  given_back  - the same after ``--threads`` other threads ran one op inside ``openmp.released()``
Each phase is the best of ``--repeats``; run it alone on a quiet machine. The last line is one JSON object:
``alone_s``, ``kept_s``, ``given_back_s`` and the two slowdowns against ``alone``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODEL = "smollm2-135m-instruct"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from llmplay import openmp
    from llmplay.engine import Engine
    from llmplay.engine.types import GenerationParams
    from llmplay.settings import Settings

    engine = Engine(Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-openmp-"))))
    params = GenerationParams(max_new_tokens=args.tokens, temperature=0.0)
    prompts = [f"Write a short poem about the number {i}." for i in range(args.prompts)]

    def best() -> float:
        times = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            engine.generate(MODEL, prompts, params)
            times.append(time.perf_counter() - began)
        return min(times)

    def park(give_back: bool, release: threading.Event) -> list[threading.Thread]:
        """Threads that run one parallel op each, then wait (alive, as idle request threads are)."""
        a = torch.ones(512, 512)

        def run() -> None:
            if give_back:
                with openmp.released():
                    a @ a
            else:
                a @ a
            release.wait()

        threads = [threading.Thread(target=run, daemon=True) for _ in range(args.threads)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        return threads

    engine.generate(MODEL, prompts[:1], params)  # load and warm up
    figures = {"alone_s": best()}
    for name, give_back in (("given_back_s", True), ("kept_s", False)):  # kept last: its workers stay until exit
        release = threading.Event()
        threads = park(give_back, release)
        figures[name] = best()
        release.set()
        for t in threads:
            t.join()
    figures = {k: round(v, 3) for k, v in figures.items()}
    figures["slowdown_kept"] = round(figures["kept_s"] / figures["alone_s"], 2)
    figures["slowdown_given_back"] = round(figures["given_back_s"] / figures["alone_s"], 2)
    figures.update(threads=args.threads, prompts=args.prompts, tokens=args.tokens)
    figures["torch_threads"] = torch.get_num_threads()
    for key in ("alone_s", "given_back_s", "kept_s"):
        print(f"{key:>14}: {figures[key]:.2f} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
