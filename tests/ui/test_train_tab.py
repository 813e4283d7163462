"""The Train tab through its API (gradio_client): start, progress, cancel/resume, queue, errors, re-attach.

A small app with only the Train tab serves these tests, its JobRunner pointed at tests/training/fake_entry.py
(the entry's contract without a model), so the tab's own behaviour is checked in seconds. The data preview
uses the real SmolLM2 tokenizer (the session engine). tests/ui/test_train_real.py runs real training jobs
through the full app, and the browser.
"""

from __future__ import annotations

import html
import time

import gradio as gr
import pytest
import yaml
from gradio_client import handle_file

from llmplay.engine import Engine
from llmplay.models import registry
from llmplay.services import Services
from llmplay.training import records
from llmplay.training.jobs import JobRunner
from llmplay.ui.tabs.train.tab import FORM, FORM_DEFAULTS, build_train_tab, config_from_form
from tests.conftest import CHAT_MODEL
from tests.ui.conftest import free_port

FAKE = ("-m", "tests.training.fake_entry")
ROWS = [{"prompt": f"What is {i} plus {i}?", "completion": f"{2 * i}"} for i in range(1, 9)]


def job_yaml(name: str = "ui-fake", steps: int = 6, rows: list | None = None, **extra) -> str:
    data = {"source": "rows", "rows": ROWS if rows is None else rows}
    config = {"name": name, "base_model": CHAT_MODEL, "max_steps": steps, "data": data}
    return yaml.safe_dump(config | extra, sort_keys=False)


def form_args(**values) -> list:
    merged = FORM_DEFAULTS | {"base_model": CHAT_MODEL} | values
    return [merged[k] for k in FORM]


class TrainApp:
    """A Train-tab-only app on a fresh data dir; ``restart`` closes it and serves a new one on the same data."""

    def __init__(self, settings, engine_models):
        self.settings = settings
        self.engine_models = engine_models
        self.demo = self.runner = self.client = None
        self.start()

    def start(self) -> None:
        from gradio_client import Client

        engine = Engine(self.settings, shared_models=self.engine_models)  # SmolLM2 loads once per session
        self.runner = JobRunner(self.settings, entry=FAKE, poll_s=0.1, cancel_grace_s=5, catalog=engine.catalog)
        with gr.Blocks() as demo:
            build_train_tab(Services.build(engine, jobs=self.runner, check_s=0), demo)
        demo.queue().launch(prevent_thread_lock=True, server_port=free_port(), server_name="127.0.0.1", quiet=True)
        self.demo, self.client = demo, Client(demo.local_url, verbose=False)

    def close(self) -> None:
        self.client.close()
        self.demo.close()
        self.runner.close()

    def restart(self) -> None:
        self.close()
        self.start()

    def start_job(self, text: str) -> tuple[str, int | None]:
        message, job, _ = self.client.predict(True, text, *form_args(), api_name="/train_start")
        return message, (job["value"] if isinstance(job, dict) else job)

    def refresh(self, job_id: int) -> dict:
        progress, chart, log_text, queue, _ = self.client.predict(job_id, api_name="/train_refresh")
        return {"progress": progress, "chart": chart, "log": log_text, "queue": queue}

    def wait_status(self, job_id: int, statuses: tuple[str, ...], timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = self.refresh(job_id)
            if any(f"data-status='{s}'" in view["progress"] for s in statuses):
                return view
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} never reached {statuses}: {view['progress']}")


@pytest.fixture()
def app(settings, engine):
    train_app = TrainApp(settings, engine.models)
    yield train_app
    train_app.close()
    for job in records.list_jobs(settings.db_path):
        if job.status == "running":
            train_app.runner.cancel(job.id)


def step_of(progress_html: str) -> int:
    return int(progress_html.split("data-step='")[1].split("'")[0])


def test_start_shows_progress_chart_log_and_queue_then_cancel_and_resume(app):
    message, job_id = app.start_job(job_yaml(steps=400))
    assert f"Job #{job_id}" in message and "running" in message
    first = app.wait_status(job_id, ("running",))
    deadline = time.monotonic() + 60  # the child imports its libraries first: slow on a busy machine
    while step_of((later := app.refresh(job_id))["progress"]) <= step_of(first["progress"]):
        assert time.monotonic() < deadline, later["progress"]
        time.sleep(0.2)
    assert step_of(later["progress"]) > step_of(first["progress"])  # the bar moves
    assert "data-points='0'" not in later["chart"] and "<polyline" in later["chart"]  # the chart has points
    assert "fake entry: job" in later["log"]
    assert [row[0] for row in later["queue"]["data"]] == [job_id]

    stopping = app.client.predict(job_id, api_name="/train_cancel")
    assert f"Stopping job #{job_id}" in stopping or f"Job #{job_id} cancelled" in stopping
    cancelled = app.wait_status(job_id, ("cancelled",), timeout=10)
    assert "Resume continues from it" in cancelled["progress"]  # the checkpoint is kept and shown

    message, _ = app.client.predict(job_id, api_name="/train_resume")
    assert f"Job #{job_id} resumes" in message
    app.wait_status(job_id, ("running",))
    assert "--resume" in app.refresh(job_id)["log"]  # started again with --resume


def test_a_second_job_waits_in_the_queue(app):
    _, first = app.start_job(job_yaml("first", steps=300))
    message, second = app.start_job(job_yaml("second", steps=2))
    assert "waits in the queue" in message
    queue = app.refresh(second)["queue"]["data"]
    assert {row[0]: row[2] for row in queue} == {first: "🏃 running", second: "⏳ queued"}
    app.client.predict(first, api_name="/train_cancel")
    app.wait_status(second, ("done",), timeout=30)


def test_bad_input_is_refused_before_a_job_starts(app, settings, tmp_path):
    cases = {
        "learning_rate must be a number": job_yaml(learning_rate=7),
        "Unknown model 'nope'": job_yaml(base_model="nope"),
        "has no rows": job_yaml(rows=[]),
        "The YAML is not valid": "name: [unclosed",
        # The server reads data.file: YAML may name only uploads (tests/ui/test_train_data_files.py).
        "is not an upload": job_yaml(data={"source": "file", "file": "/etc/passwd"}),
    }
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    other = registry.register(settings.db_path, name="gem", base_model="gemma-3-270m", kind="adapter", path=folder)
    cases["only fits the model it was trained on"] = job_yaml(parent_version=other.label)
    for expected, text in cases.items():
        message, job, _ = app.client.predict(True, text, *form_args(), api_name="/train_start")
        assert expected in html.unescape(message), (expected, message)
    # From the form: no file, then a file whose columns fit no training format.
    message, _, _ = app.client.predict(False, "", *form_args(source="file"), api_name="/train_start")
    assert "data.file is required" in html.unescape(message)
    bad = tmp_path / "bad.csv"
    bad.write_text("sentence,mood\nProfits rose.,positive\n")
    message, _, _ = app.client.predict(
        False, "", *form_args(source="file", file=handle_file(bad)), api_name="/train_start"
    )
    shown = html.unescape(message)
    assert "sentence" in shown and "mood" in shown, message  # the columns it found are named
    assert records.list_jobs(settings.db_path) == []  # nothing was queued


def test_an_exception_inside_the_job_is_shown_and_the_app_keeps_serving(app):
    _, job_id = app.start_job(job_yaml("crash-ui", steps=5))
    view = app.wait_status(job_id, ("failed",))
    assert "Error:" in view["progress"] and "boom inside the job" in view["progress"]
    message, again = app.start_job(job_yaml("after-crash", steps=1))
    assert "✅" in message
    app.wait_status(again, ("done",))


def test_the_tab_reattaches_to_a_running_job_after_an_app_restart(app):
    _, job_id = app.start_job(job_yaml("survivor", steps=40))
    before = step_of(app.wait_status(job_id, ("running",))["progress"])
    app.restart()  # a new app process would see the same: the job lives in SQLite and keeps running
    assert app.runner.running() == [job_id]
    time.sleep(1.0)
    view = app.refresh(job_id)
    assert "data-status='running'" in view["progress"] and step_of(view["progress"]) > before
    app.wait_status(job_id, ("done",), timeout=30)


def test_preview_marks_the_masked_prompt_and_counts_truncated_rows(app):
    html = app.client.predict(True, job_yaml(max_length=24), *form_args(), api_name="/train_preview")
    assert "class='masked'" in html and "class='trained'" in html
    assert "<b>7</b> train, <b>1</b> validation" in html  # 8 rows, validation_fraction 0.1 (at least one)
    truncated = int(html.split("</b> would be truncated")[0].rsplit("<b>", 1)[1])
    assert truncated > 0 and "raise max_length" in html
    roomy = app.client.predict(True, job_yaml(max_length=256), *form_args(), api_name="/train_preview")
    assert "<b>0</b> would be truncated" in roomy
    missing = job_yaml(target_modules=["nope_proj"])
    assert "nope_proj do not exist" in app.client.predict(True, missing, *form_args(), api_name="/train_preview")


def test_the_form_builds_the_config_the_yaml_editor_shows(app):
    text = app.client.predict(
        *form_args(name="form-lora", dataset="builtin:financial-sentiment", template="financial-sentiment",
                   max_steps=7, lora_r=4, target_modules="q_proj, v_proj", report_to=["wandb"]),
        api_name="/train_yaml",
    )  # fmt: skip
    config = yaml.safe_load(text)
    assert config["name"] == "form-lora" and config["max_steps"] == 7 and config["lora_r"] == 4
    assert config["target_modules"] == ["q_proj", "v_proj"] and config["report_to"] == ["wandb"]
    assert config["data"] == {"source": "dataset", "dataset": "builtin:financial-sentiment",
                              "template": "financial-sentiment"}  # fmt: skip
    assert isinstance(config["max_steps"], int)  # Gradio's floats become TrainConfig's ints


def test_config_from_form_reads_blanks_as_defaults_and_whole_floats_as_ints():
    config = config_from_form(FORM_DEFAULTS | {"base_model": CHAT_MODEL, "batch_size": 4.0, "max_rows": 0.0})
    assert config["batch_size"] == 4 and isinstance(config["batch_size"], int)
    assert "max_rows" not in config["data"] and config["target_modules"] == "default"


def test_preview_of_an_encoder_job_shows_the_split_and_the_labels(app):
    rows = [{"text": f"Sales {'rose' if i % 2 else 'fell'} {i}%.", "label": "positive" if i % 2 else "negative"}
            for i in range(10)]  # fmt: skip
    text = job_yaml("cls", rows=rows, base_model="all-minilm-l6-v2", task="classification", method="full")
    shown = html.unescape(app.client.predict(True, text, *form_args(), api_name="/train_preview"))
    assert "<b>9</b> train and <b>1</b> validation rows" in shown, shown
    assert "labels: negative, positive" in shown
