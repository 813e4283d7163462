"""A process that runs one loop update whose training job is the fake entry (slow steps), for the kill test:
``python tests/loop/update_child.py DATA_DIR LINE``."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from llmplay.engine import Engine  # noqa: E402
from llmplay.evaluation.runner import EvalRunner  # noqa: E402
from llmplay.loop import update  # noqa: E402
from llmplay.settings import Settings  # noqa: E402
from llmplay.training.jobs import JobRunner  # noqa: E402

FAKE_ENTRY = (str(ROOT / "tests" / "training" / "fake_entry.py"),)


def main(data_dir: str, line: str) -> None:
    settings = Settings(data_dir=Path(data_dir))
    engine = Engine(settings)
    real = update.training_config
    # Fake steps until the test kills it (55 hours): a slow machine must not let the job end before the kill.
    update.training_config = lambda *a: real(*a) | {"max_steps": 10**6}
    jobs = JobRunner(settings, catalog=engine.catalog, entry=FAKE_ENTRY, poll_s=0.2)
    update.run_update(engine, line, jobs=jobs, runner=EvalRunner(engine), trigger="cli", force=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
