"""The loop's DPO step for real: accepted preference pairs of a line's preference queue train a DPO job (child
process, SmolLM2) inside one update, the version it makes records the pairs in its lineage and prefers the
chosen replies more than the base did, and the pairs are spent afterwards."""

from __future__ import annotations

import pytest

from llmplay.evaluation.runner import EvalRunner
from llmplay.feedback import store
from llmplay.loop import data as loop_data
from llmplay.loop import lines
from llmplay.loop.update import dpo_config, run_update
from llmplay.models.registry import get_version
from llmplay.store import connect
from llmplay.templates import load_template
from llmplay.training.config import TrainConfig
from llmplay.training.jobs import JobRunner
from tests.conftest import CHAT_MODEL
from tests.training.test_dpo import margins

pytestmark = [pytest.mark.slow]

# The labelers preferred the surprising reply, so the base's margin starts low and the DPO step must move it.
HEADLINES = [
    ("Operating profit rose 40 % and the outlook was raised.", "negative", "positive"),
    ("Net sales doubled to a record EUR 90 mn.", "negative", "positive"),
    ("The company swung to a heavy net loss.", "positive", "negative"),
    ("The group will cut 500 jobs after sales collapsed.", "positive", "negative"),
    ("Orders hit an all-time high in the quarter.", "negative", "positive"),
    ("The share price fell 30 % after the profit warning.", "positive", "negative"),
]


def test_an_update_with_preference_pairs_trains_a_dpo_step_that_prefers_the_chosen_replies(engine):
    settings = engine.settings
    with connect(settings.db_path) as db:
        store.create_queue(db, "loop-dpo-prefs", "preference", user="admin")
        ids = []
        for i, (text, chosen, rejected) in enumerate(HEADLINES):
            # Half the pairs show the chosen reply as B, as an Arena vote for the right-hand model would.
            a, b, choice = (chosen, rejected, "a") if i % 2 else (rejected, chosen, "b")
            # A free Arena message (no template variables): the pair trains on the prompt as it was sent. Through
            # the few-shot template each pair would be ~500 tokens, and a CPU DPO step of those takes ~1 min.
            item, _ = store.add_item(
                db, "loop-dpo-prefs", source="arena", prompt=f"{text} Positive or negative? One word.",
                output=a, output_b=b, user="test",
            )  # fmt: skip
            store.respond(db, item.id, "ann", choice)
            ids.append(item.id)
        line = lines.create_line(
            db, "loop-dpo", CHAT_MODEL, "financial-sentiment",
            settings={"queues": ["loop-dpo-prefs"], "preference_queues": ["loop-dpo-prefs"], "min_new_rows": 6,
                      "heldout_fraction": 0.0, "epochs": 6.0, "batch_size": 6, "learning_rate": 3e-3,
                      "dpo_beta": 0.1, "max_new_tokens": 4, "probe_task_margin": 1.0, "probe_ppl_margin": 10.0},
        )  # fmt: skip
        gathered = loop_data.gather(db, line)
        assert len(gathered.pairs) == len(HEADLINES) and not gathered.new
    runner = EvalRunner(engine)
    jobs = JobRunner(settings, catalog=engine.catalog, poll_s=0.5)
    try:
        update = run_update(engine, "loop-dpo", jobs=jobs, runner=runner, trigger="cli")
    finally:
        jobs.close()
    assert update is not None and update.status == "promoted", update
    assert sorted(update.feedback_ids) == sorted(ids)  # the pairs are the update's lineage
    version = get_version(settings.db_path, update.candidate_version_id)
    assert version.task == "dpo" and version.parent_id is None  # no active version yet: DPO on the base
    assert sorted(version.row_ids) == sorted(f"pair{i}" for i in ids)

    with connect(settings.db_path) as db:
        line = lines.get_line(db, "loop-dpo")
        assert line.active_version_id == version.id
        template, _ = load_template(runner.library, line.template)  # the pairs as the update rendered them
        config = TrainConfig.from_dict(dpo_config(line, loop_data.preference_records(gathered, template), None))
        assert loop_data.gather(db, line).pairs == []  # spent: the next update does not train on them again
    base = engine.models.get(engine.catalog.get(CHAT_MODEL))
    tuned = engine.models.get(engine.catalog.get(version.label))
    before = margins(base.model, base, config, settings)
    after = margins(tuned.model, tuned, config, settings)
    assert sum(after) / len(after) > sum(before) / len(before) + 0.5, (before, after)
    assert sum(a > b for a, b in zip(after, before)) >= len(before) - 1
