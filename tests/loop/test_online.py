"""Online evaluation of lines' API traces (llmplay/loop/online.py) on a real SQLite file: the line's checks, the
stable sample, scores per version and day (so a promotion's effect shows), the judge on the real bundled model,
and ``llmplay traces scores``."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from llmplay import traces
from llmplay.cli import main
from llmplay.engine import Engine
from llmplay.loop import lines
from llmplay.loop.online import OnlineScorer, scores_of, summary
from llmplay.loop.online_checks import JUDGE, PARSES, OnlineError, OnlineEval
from llmplay.store import connect
from llmplay.templates.library import TemplateLibrary
from tests.conftest import CHAT_MODEL, ROOT

V2 = f"{CHAT_MODEL} + fpb v2"
LABELS = {"check": "regex", "value": "^(positive|negative|neutral)$", "name": "one label"}


def record(settings, id_, served, reply, *, line="fpb", finish="stop", at=None):
    traces.record(
        settings, id=id_, user="app", endpoint="chat", model=f"line:{line}", served=served, line=line,
        request=[{"role": "user", "content": f"Operating profit rose 25 % ({id_})."}], params={}, reply=reply,
        finish_reason=finish, error=None, prompt_tokens=9, completion_tokens=2, latency_s=0.2, ttft_s=0.1,
        backend="fast", stream=False,
    )  # fmt: skip
    if at:
        with connect(settings.db_path) as db:
            db.execute("update api_traces set at = ? where id = ?", [at, id_])
            db.conn.commit()


def scorer(settings, engine=None) -> OnlineScorer:
    templates = TemplateLibrary.from_settings(settings, folder=ROOT / "prompts")
    return OnlineScorer(engine or SimpleNamespace(settings=settings), templates, interval_s=0, start=False)


def make_line(settings, **online):
    with connect(settings.db_path) as db:
        return lines.create_line(db, "fpb", CHAT_MODEL, "financial-sentiment", settings={"online": online})


def test_online_settings_are_checked_and_the_sample_is_a_stable_draw():
    with pytest.raises(OnlineError) as exc:
        OnlineEval.from_dict({"sample": 1.5, "checks": [{"check": "regex"}, {"check": "regex", "value": "("}]})
    message = str(exc.value)
    assert "sample" in message and "needs a value" in message and "invalid regex" in message, message
    with pytest.raises(lines.LoopError, match="online.judge"):
        lines.LineSettings.from_dict({"online": {"sample": 0.1, "judge": {"modle": "x"}}})
    half = OnlineEval(sample=0.5)
    ids = [f"chatcmpl-{i}" for i in range(400)]
    drawn = [half.drawn(i) for i in ids]
    assert 160 < sum(drawn) < 240  # about half
    assert drawn == [half.drawn(i) for i in ids]  # and the same draw every time
    assert not any(OnlineEval(sample=0.0).drawn(i) for i in ids) and all(OnlineEval(sample=1.0).drawn(i) for i in ids)


def test_a_promotion_shows_as_a_new_versions_scores_on_live_traffic(settings):
    make_line(settings, sample=1.0, checks=[LABELS])
    for i, reply in enumerate(["The sentiment is positive.", "I think neutral", "positive"]):
        record(settings, f"base-{i}", CHAT_MODEL, reply, at=f"2026-12-05T10:00:0{i}")
    for i, reply in enumerate(["positive", "negative", "neutral", "positive"]):
        record(settings, f"v2-{i}", V2, reply, at=f"2026-12-06T10:00:0{i}")
    record(settings, "failed", V2, "", finish="error")  # no whole reply: not scored
    record(settings, "other", CHAT_MODEL, "x", line="other-line")  # another line's traffic

    assert scorer(settings).tick() == 7
    days = {(d.served, d.day): d for d in summary(settings, "fpb")}
    assert set(days) == {(CHAT_MODEL, "2026-12-05"), (V2, "2026-12-06")}
    before, after = days[(CHAT_MODEL, "2026-12-05")], days[(V2, "2026-12-06")]
    assert (before.traces, before.scored, after.traces, after.scored) == (3, 3, 4, 4)
    assert before.means["one label"] == pytest.approx(1 / 3) and after.means["one label"] == 1.0
    # "answer found": the template finds a label in all three base replies (it reads "positive" in a sentence)
    assert before.means[PARSES] == 1.0 and after.means[PARSES] == 1.0
    assert scores_of(settings, "base-0")["details"]["one label"].startswith("does not match")
    assert scores_of(settings, "failed") is None
    assert scorer(settings).tick() == 0  # every trace is looked at once


def test_outside_the_sample_a_trace_is_looked_at_once_and_not_scored(settings):
    make_line(settings, sample=0.5, checks=[LABELS])
    ids = [f"chatcmpl-{i}" for i in range(20)]
    for id_ in ids:
        record(settings, id_, CHAT_MODEL, "positive")
    online = OnlineEval(sample=0.5)
    scoring = scorer(settings)
    first = scoring.tick()  # at most 16 traces of a line per pass: a burst of traffic is scored over passes
    assert first == sum(online.drawn(i) for i in ids[:16])
    assert first + scoring.tick() == sum(online.drawn(i) for i in ids)
    (day,) = summary(settings, "fpb")
    assert day.traces == 20 and day.scored == sum(online.drawn(i) for i in ids)
    assert [scores_of(settings, i) is not None for i in ids] == [online.drawn(i) for i in ids]


def test_lines_without_online_evaluation_are_left_alone_and_pruning_takes_their_scores(settings):
    make_line(settings)  # online off by default
    record(settings, "t1", CHAT_MODEL, "positive")
    assert scorer(settings).tick() == 0 and summary(settings) == []
    with connect(settings.db_path) as db:
        lines.update_settings(db, "fpb", {"online": {"sample": 1.0}})
    assert scorer(settings).tick() == 1
    record(settings, "t2", CHAT_MODEL, "negative")
    traces.prune(settings.with_(trace_keep=1))  # t1 goes, and its scores with it
    assert scores_of(settings, "t1") is None and summary(settings) == []


def test_traces_scores_cli_prints_a_table_and_json(settings, capsys):
    make_line(settings, sample=1.0, checks=[LABELS])
    record(settings, "a", CHAT_MODEL, "positive", at="2026-12-05T09:00:00")
    record(settings, "b", V2, "nope", at="2026-12-06T09:00:00")
    scorer(settings).tick()
    env = ["--data-dir", str(settings.data_dir)]
    assert main([*env, "traces", "scores", "--line", "fpb"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["line", "version", "day", "traces", "scored", "answer", "found", "one", "label"]
    assert "2026-12-05" in out[1] and "1.000" in out[1] and "0.000" in out[2]
    # The Traces tab: the per-version table, and a trace's own scores beside it with why a check failed
    from llmplay.ui.tabs.traces import scores_table, trace_html

    frame = scores_table(summary(settings, "fpb"))
    assert list(frame["version"]) == [CHAT_MODEL, V2] and list(frame["one label"]) == [1.0, 0.0]
    shown = trace_html(traces.get_trace(settings, "b"), scores_of(settings, "b"))
    assert "one label: 0.00 — does not match" in shown
    assert main([*env, "traces", "scores", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["served"], r["means"]["one label"]) for r in rows] == [(CHAT_MODEL, 1.0), (V2, 0.0)]


@pytest.mark.slow
def test_the_judge_grades_sampled_replies_with_the_real_model(engine, settings):
    make_line(settings, sample=1.0, parses=False, judge={"model": CHAT_MODEL, "max_new_tokens": 24})
    record(settings, "j1", CHAT_MODEL, "positive")
    record(settings, "j2", CHAT_MODEL, "The weather is nice today.")
    judged = Engine(settings, shared_models=engine.models)  # the session's weights, this test's data dir
    assert scorer(settings, judged).tick() == 2
    for id_ in ("j1", "j2"):
        found = scores_of(settings, id_)
        assert 0.0 <= found["scores"][JUDGE] <= 1.0 and found["details"][JUDGE].strip()  # the verdict, stored
    judged.close()
