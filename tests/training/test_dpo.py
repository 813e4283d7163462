"""DPO jobs (llmplay/training/dpo.py) on the real SmolLM2 through the training entry point: the trained version
prefers its chosen replies more than the base does, the job writes progress rows and registers a version offered
by name, preference pairs come from inline rows, a JSONL file or the feedback store, and bad pairs are refused
with a clear message before anything loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llmplay.feedback.store import add_items, consumed_by, create_queue, respond
from llmplay.models import registry
from llmplay.models.adapters import stack_of
from llmplay.store import connect
from llmplay.training import records
from llmplay.training.config import TrainConfig, TrainConfigError
from llmplay.training.data_sources import TrainDataError
from llmplay.training.dpo import load_pairs, pair_examples
from tests.conftest import CHAT_MODEL
from tests.training.test_causal import last_job, run_entry
from tests.training.tiny_jobs import tiny_config

WORDS = [("great", "awful"), ("lovely", "terrible"), ("superb", "dreadful"), ("fine", "horrid")]
# The chosen reply is the opposite of the obvious one, so the base's margin starts low and DPO must move it.
PAIRS = [
    {"prompt": f"Is '{good}' good or bad? One word.", "chosen": "bad", "rejected": "good"} for good, _ in WORDS
] + [
    {  # TRL's conversational layout, as feedback exports write it
        "prompt": [{"role": "user", "content": f"Is '{bad}' good or bad? One word."}],
        "chosen": [{"role": "assistant", "content": "good"}],
        "rejected": [{"role": "assistant", "content": "bad"}],
    }
    for _, bad in WORDS
]


def dpo_config(name: str = "prefs", **overrides) -> dict:
    data = overrides.pop("data", {})
    config = tiny_config(name, **{"task": "dpo", "max_steps": 8, "learning_rate": 5e-3, "dpo_beta": 0.1, **overrides})
    config["data"] = {"source": "rows", "rows": PAIRS, "validation_fraction": 0.0, **data}
    return config


def margins(model, loaded, config: TrainConfig, settings) -> list[float]:
    """log p(chosen) - log p(rejected) per pair, summed over the reply tokens, prompts as inference renders them."""
    examples = pair_examples(config, loaded, load_pairs(config, settings).rows)
    out = []
    with torch.no_grad():
        for e in examples:
            scores = []
            for reply in (e.chosen_ids, e.rejected_ids):
                ids = torch.tensor([e.prompt_ids + reply])
                logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
                targets = ids[0, 1:]
                token_logp = logp.gather(1, targets[:, None])[:, 0]
                scores.append(token_logp[len(e.prompt_ids) - 1 :].sum().item())
            out.append(scores[0] - scores[1])
    return out


@pytest.mark.slow
def test_a_dpo_job_raises_the_chosen_over_rejected_margin_and_registers_a_version(
    settings, tmp_path, monkeypatch, isolated_engine
):
    config = dpo_config()
    assert run_entry(settings, monkeypatch, tmp_path, config) == 0
    job = last_job(settings)
    assert job.status == "done" and job.step == 8
    rows = [r for r in records.progress(settings.db_path, job.id) if r["loss"] is not None]
    assert len(rows) == 8 and all(r["total_steps"] == 8 for r in rows)
    assert any("rewards/margins" in r["metrics"] for r in rows)  # TRL's DPO figures reach the progress rows
    version = registry.get_version(settings.db_path, job.version_id)
    assert version.kind == "adapter" and version.task == "dpo" and version.label == f"{CHAT_MODEL} + prefs v1"
    assert len(version.row_ids) == len(PAIRS)

    engine = isolated_engine  # the base model is the session's copy; the DPO version loads here
    spec = engine.catalog.get(version.label)  # offered by name, like an SFT version
    tuned = engine.models.get(spec, dtype="float32")
    base = engine.models.get(engine.catalog.get(CHAT_MODEL), dtype="float32")
    parsed = TrainConfig.from_dict(config)
    before = margins(base.model, base, parsed, settings)
    after = margins(tuned.model, tuned, parsed, settings)
    assert sum(after) / len(after) > sum(before) / len(before) + 1.0
    assert sum(a > b for a, b in zip(after, before)) >= len(PAIRS) * 3 // 4


def test_pairs_without_chosen_or_with_the_same_replies_are_refused_before_anything_loads(
    settings, tmp_path, monkeypatch, capsys
):
    rows = [dict(PAIRS[0]), {"prompt": "Hi", "rejected": "bye"}, {"prompt": "Hi", "chosen": "yes", "rejected": "yes "}]
    with pytest.raises(TrainConfigError) as caught:
        TrainConfig.from_dict(dpo_config(data={"rows": rows}))
    message = str(caught.value)
    assert "pair 2 has no chosen" in message and "pair 3: chosen and rejected are the same reply" in message

    assert run_entry(settings, monkeypatch, tmp_path, dpo_config(data={"rows": rows})) == 2  # bad input
    assert "pair 2 has no chosen" in capsys.readouterr().err
    assert not records.list_jobs(settings.db_path) and not registry.list_versions(settings.db_path)

    with pytest.raises(TrainConfigError, match="task dpo trains on preference pairs"):
        TrainConfig.from_dict(dpo_config(data={"source": "dataset", "dataset": "builtin:x", "rows": None}))
    with pytest.raises(TrainConfigError, match="task dpo trains method lora or dora"):
        TrainConfig.from_dict(dpo_config(method="prompt_tuning"))


def test_a_jsonl_file_names_the_bad_line(settings, tmp_path):
    path = tmp_path / "pairs.jsonl"
    lines = [json.dumps(p) for p in PAIRS[:3]] + [json.dumps({"prompt": "x", "chosen": "a"})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = TrainConfig.from_dict(dpo_config(data={"source": "file", "file": str(path), "rows": None}))
    with pytest.raises(TrainDataError, match="pair 4 has no rejected"):
        load_pairs(config, settings)
    path.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    pairs = load_pairs(config, settings)
    assert [r.target for r in pairs.rows] == ["bad", "bad", "bad"]
    assert pairs.rows[0].messages == [{"role": "user", "content": PAIRS[0]["prompt"]}]


def test_feedback_pairs_come_from_accepted_preferences_and_corrections(settings):
    with connect(settings.db_path) as db:
        create_queue(db, "prefs", "preference")
        create_queue(db, "fixes", "correction")
        (pref, _), (tie, _) = add_items(
            db,
            "prefs",
            [
                {"source": "test", "prompt": "Say hi.", "output": "Hello!", "output_b": "Go away."},
                {"source": "test", "prompt": "Say bye.", "output": "Bye!", "output_b": "Farewell!"},
            ],
        )
        ((fix, _),) = add_items(db, "fixes", [{"source": "test", "prompt": "2+2?", "output": "5"}])
        respond(db, pref.id, "ana", "a")
        respond(db, tie.id, "ana", "tie")  # a tie prefers nothing: no pair
        respond(db, fix.id, "ana", "4")
    config = TrainConfig.from_dict(dpo_config(data={"source": "feedback", "rows": None}))
    pairs = load_pairs(config, settings)
    got = {r.id: (r.messages[-1]["content"], r.target, r.record["rejected"]) for r in pairs.rows}
    assert got == {pref.id: ("Say hi.", "Hello!", "Go away."), fix.id: ("2+2?", "4", "5")}
    with connect(settings.db_path) as db:
        assert not consumed_by(db, pref.id)


@pytest.mark.slow
def test_the_reference_is_the_parent_version_continued_or_stacked(settings, tmp_path, monkeypatch):
    """At the first logged step (before any update) DPO's rewards are log-ratios of the policy to the reference:
    zero exactly when the reference is the model training starts from, here the parent version, not the base."""
    sft = tiny_config("prefs", max_steps=2, learning_rate=5e-3, data={"validation_fraction": 0.0})
    assert run_entry(settings, monkeypatch, tmp_path, sft) == 0
    parent = registry.get_version(settings.db_path, last_job(settings).version_id)
    for stack in (False, True):
        config = dpo_config(max_steps=1, parent_version=parent.label, stack_on_parent=stack)
        assert run_entry(settings, monkeypatch, tmp_path, config) == 0
        job = last_job(settings)
        first = records.progress(settings.db_path, job.id)[0]["metrics"]
        assert abs(first["rewards/chosen"]) < 1e-6 and abs(first["rewards/rejected"]) < 1e-6
        assert first["logps/chosen"] != 0
        version = registry.get_version(settings.db_path, job.version_id)
        assert version.task == "dpo" and version.parent_id == parent.id
        assert stack_of(version.path) == ([str(Path(parent.path).resolve())] if stack else [])
