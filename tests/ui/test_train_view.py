"""What the Train tab says about a running job (ui/tabs/train/view.py): its phase and for how long, the step
in progress, and a time left that counts down between polls; no phase once the job has ended."""

from __future__ import annotations

from llmplay.training.records import Job
from llmplay.ui.tabs.train.view import loss_chart_svg, progress_html


def job(status: str = "running", step: int = 0, total: int | None = None) -> Job:
    return Job(1, "tiny", status, {}, "2026-01-01T00:00:00+00:00", started_at="2026-01-01T00:00:00+00:00",
               step=step, total_steps=total)  # fmt: skip


def attr(page: str, name: str) -> str:
    return page.split(f"data-{name}='")[1].split("'")[0]


def test_loading_shows_its_phase_and_seconds_before_any_step():
    phase = {"phase": "loading model", "detail": "smollm2-135m-instruct", "since": 1000.0}
    first, later = progress_html(job(), [], phase, now=1003.0), progress_html(job(), [], phase, now=1007.0)
    assert attr(first, "phase") == "loading model" and "loading model smollm2-135m-instruct (3 s)" in first
    assert "(7 s)" in later  # it moves at every poll
    assert "ETA after the first step" in first


def test_training_counts_down_between_steps_and_shows_the_step_in_progress():
    phase = {"phase": "training", "since": 1000.0, "step": 2, "total": 10, "steps_done": 2, "busy_s": 20.0,
             "last_step_at": 1020.0}  # fmt: skip
    pages = [progress_html(job(step=2, total=10), [], phase, now=1020.0 + t) for t in (0, 2, 4)]
    etas = [int(attr(p, "eta")) for p in pages]
    assert etas == [80, 78, 76]
    assert "training step 3 of 10" in pages[1] and "10.0 s a step" in pages[1]
    assert attr(pages[0], "step") == "2" and attr(pages[0], "total") == "10"


def test_evaluating_names_the_batch_and_a_finished_job_shows_no_phase():
    phase = {"phase": "evaluating", "since": 1000.0, "eval_done": 1, "eval_total": 3}
    assert "evaluating on the validation set batch 1 of 3" in progress_html(job(), [], phase, now=1001.0)
    done = progress_html(job("done", 10, 10), [], phase, now=1001.0)
    assert attr(done, "phase") == "" and "Now:" not in done


def test_a_loss_point_from_the_first_step_draws_a_training_line():
    chart = loss_chart_svg([{"step": 1, "loss": 2.5}])
    assert attr(chart, "points") == "1" and "<polyline" in chart


def test_the_forms_zero_batch_size_and_logging_interval_mean_scaled():
    from llmplay.training.config import TrainConfig
    from llmplay.ui.tabs.train.tab import FORM_DEFAULTS, config_from_form

    values = FORM_DEFAULTS | {
        "base_model": "smollm2-135m-instruct",
        "dataset": "builtin:financial-sentiment",
        "template": "financial-sentiment",
    }
    config = config_from_form(values)
    assert "batch_size" not in config and "logging_steps" not in config
    assert TrainConfig.from_dict(config).batch_size is None  # starts: scaled when the rows are known
    given = config_from_form(values | {"batch_size": 8.0, "logging_steps": 3.0})
    assert (given["batch_size"], given["logging_steps"]) == (8, 3)
