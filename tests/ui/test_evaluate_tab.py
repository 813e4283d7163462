"""The Evaluate tab through its public API on the live session app (real bundled models, temp data dir).

Two short wordings of a classification prompt (written into the app's temp prompts folder) keep the prompts
small, so a 6-row x 2-column run on the chat model takes seconds; module fixtures share the uploaded dataset
and the finished run.
"""

from __future__ import annotations

import csv
import html
import json
import re
import time
from pathlib import Path

import pytest
from gradio_client import handle_file

from llmplay.datasets import list_datasets
from llmplay.errors import InvalidRequestError
from llmplay.evaluation.results import get_run
from llmplay.ui.common import ERROR
from llmplay.ui.tabs.evaluate.layout import row_from_grid
from llmplay.ui.tabs.evaluate.view import bar_chart_svg, build_config
from tests.conftest import CHAT_MODEL

TEMPLATE, OTHER = "evaltab-sentiment", "evaltab-sentiment-terse"
TEMPLATE_YAML = """\
name: {name}
description: A short sentiment prompt for the Evaluate tab tests.
task: classification
variables:
  - name: text
    description: One sentence of financial news.
body: |-
  {body}
output:
  format: One word.
  labels: [positive, negative, neutral]
metrics: [accuracy]
"""
BODIES = {
    TEMPLATE: "Sentence: {{ text }}\n  Is this news positive, negative or neutral? Answer with one word.",
    OTHER: "{{ text }}\n  Sentiment for investors (positive, negative or neutral):",
}
ROWS = [
    ("Harbourline Shipping doubled its quarterly profit on strong freight rates.", "positive"),
    ("Quillon Chemicals cut its outlook and will lay off 600 workers.", "negative"),
    ("The annual general meeting will take place in Oslo on 3 April.", "neutral"),
    ("Sales at Birchwood Apparel fell 18% after a weak winter season.", "negative"),
    ("Astera Robotics won a record order worth EUR 250 million from a carmaker.", "positive"),
    ("The company has offices in Lisbon, Madrid and Porto.", "neutral"),
]
LABELS = ("positive", "negative", "neutral")
TITLES = [f"{TEMPLATE} · {CHAT_MODEL}", f"{OTHER} · {CHAT_MODEL}"]


def _progress(client, run_id) -> dict:
    return client.predict(run_id=run_id, api_name="/eval_progress")


def wait_for(client, run_id, timeout: float = 300, until=lambda p: p["finished"]) -> tuple[dict, list[dict]]:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(_progress(client, run_id))
        if until(seen[-1]):
            return seen[-1], seen
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not get there in {timeout} s: {seen[-1]}")


def start(client, dataset: str, templates: list[str], models: list[str], **form) -> tuple[str, int | None]:
    values = {"sample": 0, "sample_seed": 0, "adapters": "", "max_new_tokens": 4, "temperature": 0, "seed": ""}
    values |= {"mode": "auto", "metrics": [], "judge": "", "name": ""} | form
    return client.predict(dataset=dataset, templates=templates, models=models, **values, api_name="/eval_start")


def value(update):
    """A picker output's value (Gradio returns a component update, with its new choices)."""
    return update["value"] if isinstance(update, dict) else update


def table(value: dict) -> list[dict]:
    """A Dataframe output as records."""
    return [dict(zip(value["headers"], row)) for row in value["data"]]


def independent_label(text: str) -> str | None:
    """The test's own parser: the label word that appears first in the reply (ignoring case)."""
    found = [(m, label) for label in LABELS if (m := (text or "").lower().find(label)) >= 0]
    return min(found)[1] if found else None


@pytest.fixture(scope="module")
def template(ui_prompts_dir) -> str:
    for name, body in BODIES.items():
        (ui_prompts_dir / f"{name}.yaml").write_text(TEMPLATE_YAML.format(name=name, body=body), encoding="utf-8")
    return TEMPLATE


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("eval-upload") / "company-news.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["sentence", "label"])
        writer.writerows(ROWS)
    return path


@pytest.fixture(scope="module")
def dataset(client, csv_file, template) -> str:
    _, _, variables, reference, name = client.predict(
        file=handle_file(str(csv_file)), template=template, api_name="/eval_upload_preview"
    )
    message, _, _ = client.predict(
        file=handle_file(str(csv_file)),
        name=name,
        variables=variables,
        reference=value(reference),
        api_name="/eval_save_dataset",
    )
    assert message.startswith("✅"), message
    return name


@pytest.fixture(scope="module")
def finished_run(client, dataset, template) -> tuple[int, list[dict]]:
    message, run_id = start(client, dataset, [template, OTHER], [CHAT_MODEL])
    assert isinstance(run_id, int) and f"#{run_id}" in message, message
    final, seen = wait_for(client, run_id)
    return run_id, seen


@pytest.fixture(scope="module")
def exported(client, finished_run) -> tuple[list[dict], dict]:
    csv_path, json_path = client.predict(run_id=finished_run[0], api_name="/eval_export")
    with open(csv_path, newline="", encoding="utf-8") as f:
        records = list(csv.DictReader(f))
    return records, json.loads(Path(json_path).read_text(encoding="utf-8"))


# ---- datasets -------------------------------------------------------------------------------------------
def test_upload_previews_the_file_and_suggests_a_mapping(client, csv_file, template):
    info, preview, variables, reference, name = client.predict(
        file=handle_file(str(csv_file)), template=template, api_name="/eval_upload_preview"
    )
    assert info.startswith("✅") and "CSV" in info and "utf-8" in info and "6 rows" in info, info
    assert preview["headers"] == ["sentence", "label"]
    assert [tuple(r) for r in preview["data"]] == ROWS
    # The template's only variable goes to the only non-reference column, though their names differ.
    assert json.loads(variables) == {"text": "sentence"} and value(reference) == "label"
    assert reference["choices"] == [["(none)", ""], ["sentence", "sentence"], ["label", "label"]]
    assert name == "company-news"


def test_saved_dataset_is_listed_with_its_mapping_next_to_the_built_in_samples(client, engine, dataset):
    saved = {d.name: d for d in list_datasets(engine.settings)}
    assert saved[dataset].rows == 6 and saved[dataset].columns == ["sentence", "label"]
    assert saved[dataset].mapping.variables == {"text": "sentence"} and saved[dataset].mapping.reference == "label"
    listed, picker = client.predict(selected=dataset, api_name="/eval_datasets")
    names = [r["name"] for r in table(listed)]
    assert dataset in names and {"financial-sentiment", "arithmetic", "customer-intents"} <= set(names)
    assert value(picker) == dataset and [c[1] for c in picker["choices"]] == names


def test_bad_uploads_give_a_clear_message_and_store_nothing(client, engine, tmp_path):
    bad = {
        "empty.csv": (b"", "is empty"),
        "picture.csv": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "PNG image"),
        "ragged.csv": (b"text,label\nfine,positive\ntoo,many,fields\n", "line 3"),
    }
    before = {d.name for d in list_datasets(engine.settings)}
    for filename, (content, problem) in bad.items():
        path = tmp_path / filename
        path.write_bytes(content)
        info, preview, *_ = client.predict(file=handle_file(str(path)), template="", api_name="/eval_upload_preview")
        assert info.startswith(ERROR) and filename in info and problem in info, info
        assert preview["data"] == []
        message, _, _ = client.predict(
            file=handle_file(str(path)), name="bad-upload", variables="", reference="", api_name="/eval_save_dataset"
        )
        assert message.startswith(ERROR) and problem in message, message
    assert {d.name for d in list_datasets(engine.settings)} == before


# ---- runs -----------------------------------------------------------------------------------------------
def test_start_refuses_an_invalid_run_and_says_why(client, dataset):
    message, run_id = start(client, dataset, ["no-such-template"], [CHAT_MODEL])
    assert run_id is None and message.startswith(ERROR) and "no-such-template" in message, message
    message, run_id = start(client, dataset, [TEMPLATE], [])
    assert run_id is None and message.startswith(ERROR) and "model" in message, message
    unknown = _progress(client, 987654)
    assert unknown["finished"] and "No evaluation run" in unknown["error"]


def test_run_reports_progress_then_scores_both_columns_with_intervals(client, finished_run, exported):
    run_id, seen = finished_run
    final = seen[-1]
    assert final["status"] == "done" and final["done"] == final["total"] == 12 and final["percent"] == 100
    assert final["failed"] == 0 and final["text"].startswith(f"Run #{run_id} done: 12/12")
    done = [p["done"] for p in seen]
    assert done == sorted(done), "progress never goes backwards"

    summary, board, chart = client.predict(run_id=run_id, api_name="/eval_results")
    assert f"Run #{run_id}" in summary and all(t in summary for t in TITLES)
    scores = {r["column"]: r for r in table(board) if r["metric"] == "accuracy"}
    assert set(scores) == set(TITLES)
    records, _ = exported
    for title, line in scores.items():
        assert line["ci_low"] <= line["score"] <= line["ci_high"] and line["n"] == 6
        # Recomputed from the exported raw outputs with the test's own parser.
        mine = [independent_label(r["output"]) == r["reference"] for r in records if r["column"] == title]
        assert line["score"] == pytest.approx(sum(mine) / len(mine), abs=1e-3)
    assert chart.count("<rect") == 2 and "latency" not in chart  # one bar per column's accuracy


def test_grid_shows_outputs_side_by_side_and_filters_rows(client, finished_run, exported):
    run_id, _ = finished_run
    records, _ = exported
    grid = table(client.predict(run_id=run_id, show="all", metric="accuracy", api_name="/eval_grid"))
    assert [r["row"] for r in grid] == list(range(6))
    assert [(r["sentence"], r["reference"]) for r in grid] == ROWS
    cells = {(int(r["row"]), r["column"]): r for r in records}
    for row in grid:
        for title in TITLES:
            assert row[title] == cells[(row["row"], title)]["output"]
            assert row[f"{title} · accuracy"] == float(cells[(row["row"], title)]["score.accuracy"])

    def rows(show: str) -> list[int]:
        return [r["row"] for r in table(client.predict(run_id=run_id, show=show, metric="", api_name="/eval_grid"))]

    answers = {k: (c["answer"] or "").strip().casefold() for k, c in cells.items()}
    disagree = [r for r in range(6) if answers[(r, TITLES[0])] != answers[(r, TITLES[1])]]
    failed = [r for r in range(6) if any(float(cells[(r, t)]["score.accuracy"]) < 1 for t in TITLES)]
    assert rows("disagree") == disagree
    assert rows("failed") == failed


def test_diff_and_paired_comparison_of_two_columns(client, finished_run, exported):
    run_id, _ = finished_run
    records, _ = exported
    cells = {(int(r["row"]), r["column"]): r for r in records}
    for row in range(2):
        view = client.predict(run_id=run_id, row=row, a=1, b=2, api_name="/eval_diff")
        a, b = cells[(row, TITLES[0])]["output"], cells[(row, TITLES[1])]["output"]
        marked = "<del" in view or "<ins" in view
        assert marked == (a != b), view
        words = html.unescape(re.sub(r"<[^>]+>", "", view.split("</p>", 1)[1]))
        assert all(w in words for w in (a + " " + b).split())

    message, changed = client.predict(run_id=run_id, a=1, b=2, metric="accuracy", api_name="/eval_compare_columns")
    assert "95% CI" in message and "n=6" in message, message
    score = {k: float(c["score.accuracy"]) for k, c in cells.items()}
    better = [r for r in range(6) if score[(r, TITLES[1])] > score[(r, TITLES[0])]]
    worse = [r for r in range(6) if score[(r, TITLES[1])] < score[(r, TITLES[0])]]
    assert f"{len(better)} rows better, {len(worse)} worse" in message, message
    listed = [(r["row"], r["change"]) for r in table(changed)]
    assert listed == [(r, "better") for r in better] + [(r, "worse") for r in worse]

    message, _ = client.predict(run_id=run_id, a=1, b=1, metric="accuracy", api_name="/eval_compare_columns")
    assert message.startswith(ERROR) and "two different columns" in message


def test_export_has_one_record_per_cell_in_csv_and_json(finished_run, exported):
    run_id, _ = finished_run
    records, data = exported
    assert len(records) == 12
    assert {(r["row"], r["column"]) for r in records} == {(str(i), t) for i in range(6) for t in TITLES}
    assert {r["run_id"] for r in records} == {str(run_id)} and {r["error"] for r in records} == {""}
    assert data["run"]["id"] == run_id and len(data["cells"]) == 12
    assert [c["title"] for c in data["summary"]["columns"]] == TITLES


def test_sampled_rerun_comes_from_the_cache_and_compares_without_regressions(client, dataset, finished_run):
    old_id, _ = finished_run
    _, new_id = start(client, dataset, [TEMPLATE, OTHER], [CHAT_MODEL], sample=4, sample_seed=1)
    final, _ = wait_for(client, new_id, timeout=120)
    assert final["status"] == "done" and final["total"] == 8 and final["cached"] == 8 and final["generated"] == 0

    history, picker, old_pick, new_pick = client.predict(selected=None, api_name="/eval_runs")
    ids = [r["id"] for r in table(history)]
    assert ids[:2] == [new_id, old_id] and value(picker) == new_id
    assert (value(old_pick), value(new_pick)) == (old_id, new_id)

    message, scores, regressions = client.predict(old=old_id, new=new_id, api_name="/eval_compare_runs")
    assert message.startswith(f"**Run #{old_id} → #{new_id}**") and "0 row score(s) dropped" in message, message
    assert sorted(r["column"] for r in table(scores)) == sorted(TITLES)
    assert regressions["data"] == []


def test_cancel_stops_a_running_run_and_keeps_it_in_the_history(client):
    # Free-text replies of up to 400 tokens to the 15 built-in customer messages: far too long to finish first.
    _, run_id = start(client, "customer-intents", ["assistant"], [CHAT_MODEL], max_new_tokens=400, metrics=["length"])
    running, _ = wait_for(client, run_id, timeout=180, until=lambda p: p["status"] == "running" or p["finished"])
    assert running["status"] == "running", running
    message, *_ = client.predict(run_id=run_id, confirm=True, api_name="/eval_delete_run")
    assert message.startswith(ERROR) and "still running" in message and "cancel it first" in message, message
    time.sleep(0.5)
    assert "Cancelling" in client.predict(run_id=run_id, api_name="/eval_cancel")
    final, _ = wait_for(client, run_id, timeout=90)
    assert final["status"] == "cancelled" and final["done"] < final["total"] == 15, final
    assert "not running (cancelled)" in client.predict(run_id=run_id, api_name="/eval_cancel")
    summary, _, _ = client.predict(run_id=run_id, api_name="/eval_results")
    assert f"Run #{run_id}" in summary and "cancelled" in summary


def test_more_decoding_options_reach_every_column(client, engine, dataset):
    _, run_id = start(
        client,
        dataset,
        [TEMPLATE, OTHER],
        [CHAT_MODEL],
        sample=2,
        max_new_tokens=3,
        top_p=0.9,
        top_k=5,
        repetition_penalty=1.1,
        stop="END,\\n\\n",  # typed as in the box: a comma separates, a literal \n is a newline (spaces kept)
    )
    assert isinstance(run_id, int)
    final, _ = wait_for(client, run_id, timeout=120)
    assert final["status"] == "done" and final["total"] == 4, final
    columns = get_run(engine.settings, run_id).config["columns"]
    assert len(columns) == 2
    for column in columns:
        params = column["params"]
        assert (params["top_p"], params["top_k"], params["repetition_penalty"]) == (0.9, 5, 1.1), params
        assert params["stop"] == ["END", "\n\n"] and params["max_new_tokens"] == 3
        assert "variables" not in column  # no override: the dataset's saved mapping
    message, _ = start(client, dataset, [TEMPLATE], [CHAT_MODEL], top_k=2.5)
    assert message.startswith(ERROR) and "top_k must be a whole number" in message, message


def test_a_run_can_override_the_datasets_variable_mapping(client, engine, template, tmp_path):
    path = tmp_path / "headlines.csv"
    path.write_text("headline,label\n" + "".join(f'"{t}",{label}\n' for t, label in ROWS[:2]), encoding="utf-8")
    message, _, _ = client.predict(
        file=handle_file(str(path)), name="headlines", variables="", reference="label", api_name="/eval_save_dataset"
    )
    assert message.startswith("✅"), message
    # Positional, stopping at ``name`` as callers did before the later inputs existed: no override, so the
    # template's ``text`` has no column.
    args = ("headlines", 0, 0, [template], [CHAT_MODEL], "", 3, 0, "", "auto", [], "", "")
    message, run_id = client.predict(*args, api_name="/eval_start")
    assert run_id is None and message.startswith(ERROR) and "text" in message and "headline" in message, message
    for bad, problem in (
        ("{text: headline}", "must be JSON"),
        ('["headline"]', "must map"),
        ('{"text": 1}', "must map"),
    ):
        message, run_id = start(client, "headlines", [template], [CHAT_MODEL], variables=bad)
        assert run_id is None and message.startswith(ERROR) and problem in message, message

    message, run_id = start(
        client, "headlines", [template], [CHAT_MODEL], max_new_tokens=3, variables='{"text": "headline"}'
    )
    assert isinstance(run_id, int), message
    final, _ = wait_for(client, run_id, timeout=120)
    assert final["status"] == "done" and final["total"] == 2 and final["failed"] == 0, final
    assert get_run(engine.settings, run_id).config["columns"][0]["variables"] == {"text": "headline"}
    grid = table(client.predict(run_id=run_id, show="all", metric="", api_name="/eval_grid"))
    assert [r["headline"] for r in grid] == [t for t, _ in ROWS[:2]]


def test_delete_a_run_needs_confirming_and_forgets_it(client, engine, dataset):
    _, run_id = start(client, dataset, [TEMPLATE], [CHAT_MODEL], sample=2, max_new_tokens=2, name="to-delete")
    final, _ = wait_for(client, run_id, timeout=120)
    assert final["status"] == "done", final

    message, *_ = client.predict(run_id=run_id, confirm=False, api_name="/eval_delete_run")
    assert message.startswith(ERROR) and "Yes, delete" in message and f"#{run_id}" in message, message
    assert get_run(engine.settings, run_id).id == run_id
    message, *_ = client.predict(run_id=None, confirm=True, api_name="/eval_delete_run")
    assert message.startswith(ERROR) and "Choose a run" in message, message

    message, history, picker, old, new = client.predict(run_id=run_id, confirm=True, api_name="/eval_delete_run")
    assert message.startswith("🗑️") and f"#{run_id}" in message, message
    assert run_id not in [r["id"] for r in table(history)]
    assert run_id not in [c[1] for c in picker["choices"]] and value(picker) != run_id
    with pytest.raises(InvalidRequestError, match="No evaluation run"):
        get_run(engine.settings, run_id)
    message, *_ = client.predict(run_id=run_id, confirm=True, api_name="/eval_delete_run")
    assert message.startswith(ERROR) and "No evaluation run" in message, message


# ---- plain helpers --------------------------------------------------------------------------------------
def test_the_form_makes_a_column_per_template_and_model_or_adapter():
    config = build_config(
        "ds",
        sample=5,
        sample_seed=3,
        templates=["a", "b@v2"],
        models=["m1", "m2"],
        adapters="# comment\nm1 = /tmp/lora-1\n",
        max_new_tokens=8,
        seed="7",
        mode="generate",
        metrics=["accuracy"],
        judge="m2",
    )
    assert [(c.template, c.template_version, c.model, c.adapter) for c in config.columns] == [
        ("a", None, "m1", None),
        ("a", None, "m2", None),
        ("a", None, "m1", "/tmp/lora-1"),
        ("b", 2, "m1", None),
        ("b", 2, "m2", None),
        ("b", 2, "m1", "/tmp/lora-1"),
    ]
    assert {(c.params.max_new_tokens, c.params.seed, c.mode) for c in config.columns} == {(8, 7, "generate")}
    assert (config.sample, config.seed, config.judge.model) == (5, 3, "m2")
    assert [m.name for m in config.metrics] == ["accuracy"]
    assert build_config("ds", sample=0, templates=["a"], models=["m"]).sample is None  # 0 = every row


def test_the_form_offers_constrained_decoding_alone_or_beside_free_decoding():
    both = build_config("ds", templates=["extract-invoice"], models=["m"], mode="free + constrained")
    assert [(c.mode, c.constrained) for c in both.columns] == [("generate", False), ("generate", True)]
    assert both.columns[1].title == "extract-invoice · m · constrained"  # the two columns are told apart
    alone = build_config("ds", templates=["extract-invoice"], models=["m"], mode="constrained")
    assert [(c.mode, c.constrained) for c in alone.columns] == [("generate", True)]
    assert not any(c.constrained for c in build_config("ds", templates=["a"], models=["m"], mode="auto").columns)


def test_chart_draws_a_bar_and_an_interval_per_score():
    import pandas as pd

    board = pd.DataFrame(
        [
            {"column": "a · m", "metric": "accuracy", "score": 0.5, "ci_low": 0.2, "ci_high": 0.8, "n": 6},
            {"column": "b · <m>", "metric": "accuracy", "score": 0.25, "ci_low": 0.0, "ci_high": 0.6, "n": 6},
            {"column": "a · m", "metric": "latency_s", "score": 3.0, "ci_low": 3.0, "ci_high": 3.0, "n": 6},
        ]
    )
    svg = bar_chart_svg(board)
    assert svg.count("<rect") == 2 and "latency" not in svg and "&lt;m&gt;" in svg and "<m>" not in svg
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths[0] == pytest.approx(2 * widths[1])  # bars are proportional to the scores


def test_clicking_a_grid_cell_picks_its_dataset_row():
    import gradio as gr

    def click(row_value):
        return row_from_grid(gr.SelectData(None, {"index": [0, 2], "value": "x", "row_value": row_value}))

    assert click([4, "Sales fell.", "negative"]) == 4, "the grid's row column, not the position (filters hide rows)"
    assert click([2.0, "x"]) == 2
    assert isinstance(click(["⚠️ Error: no run"]), type(gr.skip())), "a problem line picks nothing"
