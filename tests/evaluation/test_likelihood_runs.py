"""Likelihood columns of evaluation runs: rows scored in batches (llmplay.engine.likelihood), cached outputs served
from the cache, every result naming its backend and precision, and base-model endpoints scored from the prompt
log-probabilities they return.

The endpoint test's server is a LOOPBACK STAND-IN, NOT vLLM: it answers ``/v1/completions`` with ``echo`` and
``logprobs`` in vLLM's reply shape (tokens, token_logprobs, text_offset; the first token without a log-probability;
one generated token), the log-probabilities computed by the real gemma-3-270m of this test session. No vLLM or
llama.cpp server can run here, and the local test server (llm-katan) has no /completions.
"""

from __future__ import annotations

import json
import random
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pandas as pd
import pytest

from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.engine.prompt_logprobs import ENDPOINT_LIKELIHOOD
from llmplay.engine.types import GenerationParams
from llmplay.errors import InvalidRequestError
from llmplay.evaluation import outputs
from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
from llmplay.evaluation.results import get_run, load_results
from llmplay.evaluation.runner import EvalRunner
from llmplay.models.catalog import ModelSpec
from llmplay.store import connect
from llmplay.templates.library import TemplateLibrary
from llmplay.templates.model import parse_template
from llmplay.templates.render import build_request
from tests.conftest import BASE_MODEL, CHAT_MODEL, ROOT, SHARED_DATASETS

pytestmark = pytest.mark.slow

LABELS = ("positive", "negative", "neutral")
TEMPLATE = "financial-sentiment"


@pytest.fixture()
def runner(isolated_engine, tmp_path) -> EvalRunner:
    folder = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", folder, ignore=shutil.ignore_patterns("README.md"))
    return EvalRunner(isolated_engine, TemplateLibrary(folder, isolated_engine.settings.db_path), chunk_size=5)


@pytest.fixture()
def fpb12(isolated_engine) -> list[dict]:
    path = SHARED_DATASETS / "financial_phrasebank" / "sentences_allagree.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is missing (the shared datasets are not next to this clone)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(7).shuffle(rows)
    df = pd.DataFrame(rows[:12], columns=["text", "label"], dtype=object)
    save_dataset(isolated_engine.settings, "fpb12", df, ColumnMapping({"text": "text"}, "label"), source="fpb")
    return rows[:12]


def _likelihood(model: str) -> ColumnConfig:
    return ColumnConfig(TEMPLATE, model, params=GenerationParams(max_new_tokens=4), mode="likelihood")


def _details(settings, run_id: int, column: int = 0) -> list[dict]:
    with connect(settings.db_path) as db:
        rows = db.query(
            "select o.details, o.backend from eval_cells c join eval_outputs o on o.id = c.output_id "
            "where c.run_id = ? and c.column_index = ? order by c.row_index",
            [run_id, column],
        )
        return [{"options": json.loads(r["details"])["options"], "backend": r["backend"]} for r in rows]


def test_batched_likelihood_run_chooses_as_one_row_at_a_time_and_reruns_from_the_cache(runner, fpb12):
    engine = runner.engine
    config = RunConfig(dataset="fpb12", columns=(_likelihood(CHAT_MODEL),), metrics=(MetricConfig("accuracy"),))
    run_id = runner.run(config)
    info = get_run(engine.settings, run_id)
    assert info.status == "done" and info.done_cells == 12 and info.failed_cells == 0
    answers = [load_results(engine.settings, run_id).cells[(r, 0)].answer for r in range(12)]
    details = _details(engine.settings, run_id)
    template = parse_template(runner.library.current_version(TEMPLATE).content, TEMPLATE)
    for row, answer, stored in zip(fpb12, answers, details):
        request, _ = build_request(template, "chat", {"text": row["text"]})
        best, scores = engine.choose(CHAT_MODEL, request, LABELS)  # today's one-row path
        assert answer == best
        assert stored["options"] == pytest.approx({s.option: s.logprob for s in scores}, abs=2e-4)
        assert stored["backend"] == "transformers float32"  # backend and precision named

    again = get_run(engine.settings, runner.run(config))
    assert again.cached_cells == 12 and again.generated_cells == 0
    # ONNX batches decode generate cells only: likelihood cells stay keyed (and labelled) as transformers.
    runner.settings = runner.settings.with_(batch_backend="onnx/int8")
    fast = get_run(engine.settings, runner.run(config))
    assert fast.cached_cells == 12 and fast.generated_cells == 0


def test_the_cache_key_of_a_likelihood_cell_includes_backend_and_precision():
    spec = ModelSpec(name="m", kind="chat", source="bundled", location="x")
    key = dict(prompt="p", spec=spec, adapter=None, params=GenerationParams(), mode="likelihood", options=LABELS)
    float32 = outputs.cache_key(dtype="float32", **key)
    assert float32 != outputs.cache_key(dtype="bfloat16", **key)
    assert float32 != outputs.cache_key(dtype="float32", backend="fast", **key)
    assert float32 != outputs.cache_key(dtype="float32", **{**key, "mode": "generate"})
    assert float32 == outputs.cache_key(dtype="float32", backend="transformers", **key)


# ---- endpoints ------------------------------------------------------------------------------------------------
@pytest.fixture()
def vllm_like(engine) -> Iterator[str]:
    """A loopback /v1/completions in vLLM's echo + logprobs reply shape, scored by the session's real gemma."""
    import torch

    loaded = engine.models.get(engine.catalog.get(BASE_MODEL))
    tok = loaded.tokenizer

    def choice(index: int, prompt: str) -> dict:
        enc = tok(prompt, return_offsets_mapping=True)  # with BOS, as vLLM tokenizes a text prompt
        ids = enc["input_ids"]
        with loaded.lock, torch.inference_mode():
            logits = loaded.model(input_ids=torch.tensor([ids])).logits[0].float()
        lp = torch.log_softmax(logits, dim=-1)
        generated = int(lp[-1].argmax())
        values = [None] + [lp[i - 1, ids[i]].item() for i in range(1, len(ids))] + [lp[-1, generated].item()]
        text = prompt + tok.decode([generated])
        return {
            "index": index,
            "text": text,
            "logprobs": {
                "tokens": [tok.decode([t]) for t in ids + [generated]],
                "token_logprobs": values,
                "text_offset": [start for start, _ in enc["offset_mapping"]] + [len(prompt)],
                "top_logprobs": [None] * (len(ids) + 1),
            },
            "finish_reason": "length",
        }

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            if self.path != "/v1/completions" or not body.get("echo") or not body.get("logprobs"):
                self.send_error(400, "this stand-in only answers echo + logprobs completions")
                return
            prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
            data = json.dumps({"object": "text_completion", "choices": [choice(i, p) for i, p in enumerate(prompts)]})
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data.encode())))
            self.end_headers()
            self.wfile.write(data.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_a_base_endpoint_returning_prompt_logprobs_is_scored_like_the_local_model(runner, fpb12, vllm_like):
    engine = runner.engine
    engine.catalog.add(ModelSpec("served-gemma", "base", "endpoint", vllm_like, api_model="g"), persist=False)
    # the stand-in runs the real model for every prompt token on a shared CPU: give it more than the default 120 s
    engine.provider("served-gemma")._client.timeout = httpx.Timeout(900.0, connect=5.0)
    config = RunConfig(
        dataset="fpb12", sample=4, seed=1, columns=(_likelihood(BASE_MODEL), _likelihood("served-gemma"))
    )
    run_id = runner.run(config)
    info = get_run(engine.settings, run_id)
    assert info.status == "done" and info.failed_cells == 0, info.error
    results = load_results(engine.settings, run_id)
    local, served = _details(engine.settings, run_id, 0), _details(engine.settings, run_id, 1)
    assert [results.cells[(r, 1)].answer for r in range(4)] == [results.cells[(r, 0)].answer for r in range(4)]
    for mine, theirs in zip(local, served):
        assert theirs["options"] == pytest.approx(mine["options"], abs=1e-3)
    assert {d["backend"] for d in served} == {ENDPOINT_LIKELIHOOD}


def test_a_chat_endpoint_in_likelihood_mode_is_refused_before_the_run(runner, fpb12):
    engine = runner.engine
    engine.catalog.add(ModelSpec("chat-ep", "chat", "endpoint", "http://127.0.0.1:9/v1"), persist=False)
    with pytest.raises(InvalidRequestError, match="chat endpoint"):
        runner.submit(RunConfig(dataset="fpb12", columns=(_likelihood("chat-ep"),)))
