"""The app's long-lived objects, built once where the app is assembled (``ui/app.py``) and passed to every tab.

A tab only lays out its part of the page and wires events to these; none builds its own runner, scheduler or
template library, so there is one of each per app (runs go one at a time, jobs share one queue, every tab sees
a template saved in another at once). Tests build one per app too, pointing it at their own folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmplay.engine import Engine
from llmplay.evaluation.runner import EvalRunner
from llmplay.loop.online import OnlineScorer
from llmplay.loop.scheduler import Scheduler
from llmplay.optimize.jobs import OptimizeJobs
from llmplay.settings import Settings
from llmplay.templates import TemplateLibrary
from llmplay.training.jobs import JobRunner
from llmplay.worker import interval_from_env

LOOP_CHECK_ENV = "LLMPLAY_LOOP_CHECK_S"


def loop_check_interval() -> float:
    """Seconds between the app scheduler's trigger checks: $LLMPLAY_LOOP_CHECK_S, default 60; 0 = no checks."""
    return interval_from_env(LOOP_CHECK_ENV, 60.0)


@dataclass
class Services:
    """``engine``: models and generation; ``templates``: the template library (the data dir's over the shipped
    ``prompts_dir``); ``evaluations``: the one evaluation runner; ``jobs``: the one training job runner;
    ``scheduler``: the continual-learning loop's trigger checks; ``optimize``: the prompt searches (feedback,
    datasets, users and the audit log are functions over ``settings``' database and need no object)."""

    engine: Engine
    templates: TemplateLibrary
    evaluations: EvalRunner
    jobs: JobRunner
    scheduler: Scheduler
    prompts_dir: Path | None = None
    online: OnlineScorer | None = None  # scores sampled API traces of lines in the background (loop/online.py)
    optimize: OptimizeJobs | None = None  # prompt searches run as background jobs (optimize/jobs.py)
    owns_jobs: bool = False  # built its job runner (not handed one): its watcher thread ends with close()

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    @classmethod
    def build(
        cls,
        engine: Engine,
        prompts_dir: Path | str | None = None,
        *,
        jobs: JobRunner | None = None,
        check_s: float | None = None,
    ) -> Services:
        """Everything the app needs around ``engine``. ``prompts_dir``: the shipped template library (default:
        the settings'); ``jobs``: a job runner to share (tests pass one); ``check_s``: the loop scheduler's
        interval (default $LLMPLAY_LOOP_CHECK_S; 0 = it never checks by itself)."""
        prompts_dir = Path(prompts_dir) if prompts_dir else None
        templates = TemplateLibrary.from_settings(engine.settings, folder=prompts_dir)
        evaluations = EvalRunner(engine, templates)
        owns_jobs = jobs is None
        jobs = jobs or JobRunner(engine.settings, prompts_dir=prompts_dir, catalog=engine.catalog)
        check_s = loop_check_interval() if check_s is None else check_s
        scheduler = Scheduler(engine, jobs=jobs, runner=evaluations, check_s=check_s, start=check_s > 0)
        online = OnlineScorer(engine, templates, interval_s=0 if check_s == 0 else None)
        optimize = OptimizeJobs(engine, templates)
        return cls(engine, templates, evaluations, jobs, scheduler, prompts_dir, online, optimize, owns_jobs)

    def close(self) -> None:
        """Stop the background threads: the scheduler's, the scorer's, the searches', and the job runner's watcher
        when these services built it (running jobs are child processes of their own and keep running)."""
        self.scheduler.close()
        if self.online is not None:
            self.online.close()
        if self.optimize is not None:
            self.optimize.close()
        if self.owns_jobs:
            self.jobs.close()
