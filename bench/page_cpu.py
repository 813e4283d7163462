"""How much of the machine does the open page itself take? Browser CPU for a page load, and a 40-row evaluation
watched in the Evaluate tab against the same run with no page, with llmplay's progress policy
(llmplay/ui/progress.py) and with Gradio's default (every event's progress on its outputs), in one run.

    .venv/bin/python bench/page_cpu.py [--rows 40] [--settle 20]

1. One engine (the bundled SmolLM2), warmed by a run of the rows with no page (EvalRunner, cold then warm: the
   second is the ``unwatched_eval_s`` figure).
2. For each variant (``gradio_default`` first, then ``llmplay``): the app in this process, headless Chromium
   (Debian's, as the browser tests); a page load and ``--settle`` s of idle: the browser's CPU seconds (all its
   processes, from /proc); then in the Evaluate tab the rows x financial-sentiment x SmolLM2, generate, 4 new
   tokens, a fresh seed (no cache): seconds from Start to the finished bar, and the browser's and this
   process's CPU seconds meanwhile.
3. The last line is one JSON object: ``page_load_browser_cpu_s``, ``watched_eval_s``,
   ``watched_eval_browser_cpu_s`` (llmplay), the same keys with ``_gradio_default``, and ``unwatched_eval_s``.

Needs ../shared/datasets (Financial PhraseBank) and /usr/bin/chromium with playwright. Run it alone on a quiet
machine: the figures are about two cores shared by the page, the server and the model.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _data import FPB, _jsonl, require  # noqa: E402

MODEL = "smollm2-135m-instruct"
TEMPLATE = "financial-sentiment"
DATASET = "fpb-page"
CHROMIUM = Path("/usr/bin/chromium")
TICK = os.sysconf("SC_CLK_TCK")


def browser_cpu_s() -> float:
    """CPU seconds (user + system) of every running chromium process, from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        if "chrom" in name:
            total += int(rest[11]) + int(rest[12])  # utime, stime (fields 14 and 15)
    return total / TICK


def own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def unwatched(engine, seed: int) -> float:
    from llmplay.engine import GenerationParams
    from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
    from llmplay.evaluation.runner import EvalRunner

    params = GenerationParams(max_new_tokens=4, seed=seed)
    column = ColumnConfig(template=TEMPLATE, model=MODEL, params=params, mode="generate")
    config = RunConfig(dataset=DATASET, columns=(column,), metrics=(MetricConfig("exact_match"),))
    started = time.perf_counter()
    EvalRunner(engine).run(config)
    return time.perf_counter() - started


def pick(page, box, option: str) -> None:
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()


def variant(services, name: str, settle: float, seed: int) -> dict:
    from playwright.sync_api import sync_playwright

    import llmplay.ui.app as ui_app

    policy = ui_app.quiet_progress
    if name == "gradio_default":
        ui_app.quiet_progress = lambda demo: None  # every event's progress on its outputs, as Gradio does
    try:
        demo = ui_app.build_app(services)
    finally:
        ui_app.quiet_progress = policy
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    figures = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            before = browser_cpu_s()
            page.goto(demo.local_url)
            page.wait_for_timeout(settle * 1000)
            figures["page_load_browser_cpu_s"] = round(browser_cpu_s() - before, 1)
            page.get_by_role("tab", name="Evaluate").click()
            page.get_by_role("tab", name="Run").click()
            pick(page, page.locator("#eval-dataset input"), DATASET)
            pick(page, page.locator("#eval-templates input"), TEMPLATE)
            pick(page, page.locator("#eval-mode input"), "generate")
            page.locator("#eval-max-new-tokens input").fill("4")
            page.locator("#eval-seed textarea, #eval-seed input").first.fill(str(seed))
            page.wait_for_timeout(2000)
            browser0, own0, started = browser_cpu_s(), own_cpu_s(), time.perf_counter()
            page.locator("#eval-start").click()
            page.locator("#eval-run-status").get_by_text("Started run").wait_for()
            while not any(mark in page.locator("#eval-progress").inner_text() for mark in ("✅", "⚠️")):
                time.sleep(0.2)
            figures["watched_eval_s"] = round(time.perf_counter() - started, 1)
            figures["watched_eval_browser_cpu_s"] = round(browser_cpu_s() - browser0, 1)
            figures["watched_eval_server_cpu_s"] = round(own_cpu_s() - own0, 1)
            if "✅" not in page.locator("#eval-progress").inner_text():
                sys.exit(f"the watched run failed: {page.locator('#eval-progress').inner_text()}")
            browser.close()
    finally:
        demo.close()
    print(name, figures, flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--settle", type=float, default=20.0, help="idle seconds after the page load")
    args = parser.parse_args()
    require(FPB)
    if not CHROMIUM.exists():
        sys.exit(f"skipped: needs {CHROMIUM}")
    import pandas as pd

    from llmplay.datasets import ColumnMapping, save_dataset
    from llmplay.engine import Engine
    from llmplay.services import Services
    from llmplay.settings import Settings

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    settings = Settings.from_env(data_dir=Path(tempfile.mkdtemp(prefix="llmplay-page-cpu-")))
    rows = _jsonl(FPB)
    random.Random(21).shuffle(rows)
    frame = pd.DataFrame(rows[: args.rows], columns=["text", "label"], dtype=object)
    save_dataset(settings, DATASET, frame, ColumnMapping({"text": "text"}, "label"), source="fpb")
    engine = Engine(settings)
    cold = unwatched(engine, seed=1)
    warm = unwatched(engine, seed=2)
    print(f"unwatched: cold {cold:.1f} s, warm {warm:.1f} s", flush=True)
    services = Services.build(engine)
    default = variant(services, "gradio_default", args.settle, seed=3)
    ours = variant(services, "llmplay", args.settle, seed=4)
    result = {**ours, **{f"{k}_gradio_default": v for k, v in default.items()}, "unwatched_eval_s": round(warm, 1)}
    result["rows"] = args.rows
    print(json.dumps(result))


if __name__ == "__main__":
    main()
