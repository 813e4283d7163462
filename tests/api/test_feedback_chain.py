"""The whole capture loop through the real server: an application's request (a trace) -> its user's correction
through /v1/feedback -> an item in the line's queue that waits for review -> an admin accepts it -> a loop
update trains on it (its lineage names the trace) -> promoted -> the next API request is answered by the new
version; rollback -> the one after by the base again."""

from __future__ import annotations

import httpx
import openai
import pytest

from llmplay.auth.keys import create_key
from llmplay.evaluation.runner import EvalRunner
from llmplay.feedback import store as fb
from llmplay.feedback.accepted import accepted_items
from llmplay.loop import lines
from llmplay.loop.update import promote_candidate, run_update
from llmplay.models import registry
from llmplay.store import connect
from llmplay.training.jobs import JobRunner
from tests.conftest import CHAT_MODEL

pytestmark = pytest.mark.slow
ASK = [{"role": "user", "content": "Operating profit rose 25 % to EUR 10 mn. Sentiment?"}]
# Lenient gates: this test is about the chain, not about whether one correction makes a better model.
CHAIN = {"min_new_rows": 1, "heldout_fraction": 0.0, "replay_ratio": 0.0, "general_ratio": 0.0, "epochs": 2.0,
         "batch_size": 2, "learning_rate": 1e-3, "max_new_tokens": 4, "probe_task_margin": 1.0,
         "probe_ppl_margin": 10.0}  # fmt: skip


def test_a_users_correction_of_a_trace_reaches_a_promoted_version_that_the_endpoint_then_serves(server):
    url, settings, api_engine = server
    with connect(settings.db_path) as db:
        lines.create_line(db, "chain", CHAT_MODEL, "financial-sentiment", settings=CHAIN)
    app = openai.OpenAI(base_url=url + "/v1", api_key=create_key(settings, "vic"), max_retries=0, timeout=300)

    def ask() -> tuple[str, str]:
        raw = app.chat.completions.with_raw_response.create(model="line:chain", messages=ASK, temperature=0,
                                                            max_tokens=8)  # fmt: skip
        return raw.headers["x-llmplay-served-by"], raw.parse().id

    served, trace_id = ask()
    assert served == CHAT_MODEL
    answer = httpx.post(url + "/v1/feedback", json={"trace_id": trace_id, "correction": "positive"},
                        headers={"Authorization": f"Bearer {app.api_key}"}, timeout=60)  # fmt: skip
    assert answer.status_code == 200, answer.text
    (stored,) = answer.json()["stored"]
    with connect(settings.db_path) as db:
        assert not [a for a in accepted_items(db) if a.item.id == stored["item_id"]], "a viewer's waits for review"
        fb.adjudicate(db, stored["item_id"], "positive", adjudicator="ada")  # the admin accepts it

    jobs = JobRunner(settings, catalog=api_engine.catalog, poll_s=0.5)
    try:
        update = run_update(api_engine, "chain", jobs=jobs, runner=EvalRunner(api_engine), trigger="cli")
    finally:
        jobs.close()
    assert update is not None and update.status in ("promoted", "rejected"), update
    assert update.feedback_ids == [stored["item_id"]]
    with connect(settings.db_path) as db:
        item = fb.get_item(db, update.feedback_ids[0])
        assert item.origin == {"api_trace": trace_id}  # lineage: the version's rows come from this trace
        if update.status == "rejected":  # gates are the loop's call; the chain goes on by hand, as an admin would
            promote_candidate(db, update.id, user="ada")
    version = registry.get_version(settings.db_path, update.candidate_version_id)
    assert f"fb{stored['item_id']}" in version.row_ids

    assert ask()[0] == version.label  # the next request: the new version answers, no restart
    with connect(settings.db_path) as db:
        lines.rollback(db, "chain", user="ada")
    assert ask()[0] == CHAT_MODEL  # and after a rollback, the base again
    api_engine.models.unload_adapters()
