"""Traces of API requests (llmplay/traces.py) on a real SQLite file: redaction, sampling, pruning, filters, and
`llmplay traces list|export`."""

from __future__ import annotations

import json
import random

from llmplay import exitcodes, traces
from llmplay.cli import main


def _record(settings, id_, reply="ok", **extra):
    fields = dict(
        id=id_, user="app", endpoint="chat", model="m", served="m", line=None,
        request=[{"role": "user", "content": f"question {id_}"}], params={"max_new_tokens": 4}, reply=reply,
        finish_reason="stop", error=None, prompt_tokens=3, completion_tokens=1, latency_s=0.1, ttft_s=0.05,
        backend="fast float16", stream=False,
    )  # fmt: skip
    traces.record(settings, **(fields | extra))


def test_patterns_are_redacted_before_a_trace_is_stored(settings):
    settings = settings.with_(trace_redact=(r"\b\d{4}-\d{4}-\d{4}-\d{4}\b", r"(?i)password: \S+"))
    _record(
        settings,
        "t1",
        request=[{"role": "user", "content": "card 1234-5678-9012-3456, Password: hunter2"}],
        reply="your card 1234-5678-9012-3456",
    )
    trace = traces.get_trace(settings, "t1")
    assert trace.request == [{"role": "user", "content": "card [redacted], [redacted]"}]
    assert trace.reply == "your card [redacted]"


def test_sampling_keeps_the_configured_share(settings):
    rng = random.Random(0)
    half = settings.with_(trace_sample=0.5)
    kept = sum(traces.sampled(half, rng) for _ in range(2000))
    assert 900 < kept < 1100
    assert not any(traces.sampled(settings.with_(trace_sample=0.0), rng) for _ in range(100))
    assert all(traces.sampled(settings, rng) for _ in range(100))


def test_pruning_keeps_the_newest(settings):
    settings = settings.with_(trace_keep=3)
    for i in range(5):
        _record(settings, f"t{i}")
    assert traces.prune(settings) == 2
    assert [t.id for t in traces.list_traces(settings)] == ["t4", "t3", "t2"]


def test_the_cli_lists_filters_and_exports_jsonl(settings, tmp_path, capsys, monkeypatch):
    _record(settings, "a1", reply="Paris is the capital")
    _record(settings, "a2", reply="Berlin", user="other", finish_reason="length")
    base = ["--data-dir", str(settings.data_dir), "traces"]
    assert main([*base, "list", "--search", "PARIS"]) == exitcodes.OK
    listed = capsys.readouterr().out
    assert "a1" in listed and "a2" not in listed
    out = tmp_path / "traces.jsonl"
    assert main([*base, "export", "--finish-reason", "length", "--out", str(out)]) == exitcodes.OK
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["user"], r["reply"]) for r in rows] == [("a2", "other", "Berlin")]
    assert main([*base, "export", "--out", str(tmp_path)]) == exitcodes.BAD_INPUT  # a folder: a message
    assert "Cannot write" in capsys.readouterr().err


def test_traces_sent_to_a_queue_become_items_once_with_the_trace_as_origin(settings):
    from llmplay.feedback import store as fb
    from llmplay.store import connect

    _record(settings, "q1", reply="first reply", line="support")
    _record(settings, "q2", reply="second reply")
    with connect(settings.db_path) as db:
        fb.create_queue(db, "review-api", task="correction")
    assert traces.to_queue(settings, ["q1", "q2"], "review-api", user="ada") == (2, 0)
    assert traces.to_queue(settings, ["q1"], "review-api", user="ada") == (0, 1), "the same trace is one item"
    with connect(settings.db_path) as db:
        items = fb.list_items(db, "review-api")
    assert sorted((i.output, i.origin["api_trace"]) for i in items) == [("first reply", "q1"), ("second reply", "q2")]
    assert {i.meta.get("line") for i in items} == {"support", None}


def test_the_traces_view_escapes_what_applications_sent(settings):
    from llmplay.ui.tabs.traces import trace_html, trace_rows

    _record(settings, "x1", reply="<img src=x onerror=alert(1)>",
            request=[{"role": "user", "content": "<script>alert(2)</script>"}])  # fmt: skip
    trace = traces.get_trace(settings, "x1")
    shown = trace_html(trace)
    assert "<script>" not in shown and "<img" not in shown and "&lt;script&gt;" in shown
    assert trace_rows([trace]).iloc[0]["reply"] == "<img src=x onerror=alert(1)>"  # a table cell is text


def test_traces_filter_by_their_rating_and_a_line_can_store_a_share_of_its_own(settings, capsys):
    from llmplay.feedback.provenance import Sender
    from llmplay.loop.lines import create_line
    from llmplay.store import connect

    for id_ in ("liked", "disliked", "unrated"):
        _record(settings, id_, reply=f"reply {id_}")
    app = Sender("app", "viewer")
    traces.send_feedback(settings, "liked", app, rating="up")
    traces.send_feedback(settings, "disliked", app, rating=0)
    traces.send_feedback(settings, "unrated", app, correction="a better reply")  # a correction is no rating
    assert [t.id for t in traces.list_traces(settings, rating="up")] == ["liked"]
    assert [t.id for t in traces.list_traces(settings, rating="down")] == ["disliked"]
    assert [t.id for t in traces.list_traces(settings, rating="none")] == ["unrated"]
    assert main(["--data-dir", str(settings.data_dir), "traces", "list", "--rating", "down"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert "disliked" in out and "liked " not in out.replace("disliked", "")

    with connect(settings.db_path) as db:
        create_line(db, "quiet", "smollm2-135m-instruct", "financial-sentiment", settings={"trace_sample": 0.0})
        create_line(db, "loud", "smollm2-135m-instruct", "financial-sentiment")
    assert settings.trace_sample == 1.0
    assert not any(traces.sampled(settings, line="quiet") for _ in range(50))  # its own share: none
    assert all(traces.sampled(settings, line="loud") for _ in range(50))  # no share of its own: the server's
