"""Encoder jobs (llmplay.training.encoder) on the real bundled MiniLM: NER on CoNLL-2003 rows, classification on
Financial PhraseBank rows, freezing, LoRA with the head trained in full, masked-LM, and bad input.

Runs are tiny (a few steps, short max_length). CoNLL-2003 is research-only, so no slice of it ships here: the
tests read ../shared/datasets and skip without it.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest
from seqeval.metrics import f1_score

from llmplay.engine import Engine, GenerationRequest
from llmplay.errors import LlmplayError
from llmplay.models import registry
from llmplay.training.config import TrainConfig
from llmplay.training.encoder import train_encoder
from llmplay.training.encoder_data import (
    EncoderDataError,
    load_encoder_data,
    read_conll,
    split_rows,
)
from llmplay.training.encoder_model import build_model, resolve_encoder
from llmplay.training.tasks.ner import to_bio
from tests.conftest import ROOT, SHARED_DATASETS

CONLL = SHARED_DATASETS / "conll2003" / "eng.testb.jsonl"
FPB = SHARED_DATASETS / "financial_phrasebank" / "sentences_allagree.jsonl"
needs_shared = pytest.mark.skipif(
    not (CONLL.exists() and FPB.exists()), reason="needs ../shared/datasets (CoNLL-2003, Financial PhraseBank)"
)
ENCODER = "all-minilm-l6-v2"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _config(**values) -> TrainConfig:
    base = {"name": "enc-test", "base_model": ENCODER, "batch_size": 16, "max_length": 64, "logging_steps": 4}
    return TrainConfig.from_dict({**base, **values})


def _ner_rows(docs: int = 16) -> list[dict]:
    rows = _jsonl(CONLL)
    return [{"tokens": r["tokens"], "tags": r["tags_iob2"], "doc": r["doc"]} for r in rows if r["doc"] < docs]


def _fpb_rows(n: int) -> list[dict]:
    rows = _jsonl(FPB)
    by_label: dict[str, list] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    return [row for i in range(n // 3) for row in (by_label[x][i] for x in sorted(by_label))]  # balanced


def _serve(engine: Engine, name: str, kind: str, folder) -> str:
    from llmplay.models.catalog import ModelSpec

    engine.catalog.add(ModelSpec(name=name, kind=kind, source="local", location=str(folder)), persist=False)
    return name


def _untrained(tmp_path: Path, task: str, labels: list[str]) -> Path:
    """The base encoder with a fresh head, saved like a trained one: the "before" of every comparison."""
    import torch

    from llmplay.settings import Settings

    torch.manual_seed(0)
    folder = resolve_encoder(_config(task=task, data={"source": "rows", "rows": []}), Settings()).folder
    model, tokenizer = build_model(task, folder, labels)
    model.save_pretrained(str(tmp_path))
    tokenizer.save_pretrained(str(tmp_path))
    return tmp_path


# ---- data: no model needed ---------------------------------------------------------------------------------------


def test_conll_reader_converts_iob1_and_numbers_documents(tmp_path):
    path = tmp_path / "eng.sample"
    path.write_text(
        "-DOCSTART- -X- -X- O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman JJ I-NP I-MISC\n\n"
        "-DOCSTART- -X- -X- O\n\nPeter NNP I-NP I-PER\nBlackburn NNP I-NP I-PER\n\n"
        "Paris NNP I-NP I-LOC\nLyon NNP I-NP B-LOC\n\n-DOCSTART- -X- -X- O",
        encoding="utf-8",
    )
    rows = read_conll(path)
    assert [r["tokens"] for r in rows] == [["EU", "rejects", "German"], ["Peter", "Blackburn"], ["Paris", "Lyon"]]
    assert [r["doc"] for r in rows] == [0, 1, 1]
    assert [to_bio(r["tags"]) for r in rows] == [
        ["B-ORG", "O", "B-MISC"],
        ["B-PER", "I-PER"],
        ["B-LOC", "B-LOC"],  # IOB1's B- marks a second entity right after one of the same type
    ]
    assert to_bio(["B-PER", "I-PER", "O", "I-LOC"]) == ["B-PER", "I-PER", "O", "B-LOC"]  # BIO stays BIO


def test_split_keeps_each_document_on_one_side():
    rows = [{"id": i, "doc": i // 3, "tokens": ["x"], "tags": ["O"]} for i in range(30)]
    train, held = split_rows(rows, 0.3, seed=1)
    assert len(train) + len(held) == 30 and held
    assert not {r["doc"] for r in train} & {r["doc"] for r in held}
    assert split_rows(rows, 0.3, seed=1) == (train, held)  # seeded
    assert split_rows(rows, 0.3, seed=2) != (train, held)


def test_bad_data_is_named_before_anything_loads(settings):
    def problem(task="classification", **data) -> str:
        with pytest.raises(EncoderDataError) as err:
            load_encoder_data(_config(task=task, data={"source": "rows", **data}), settings)
        return str(err.value)

    assert "empty" in problem(rows=[])
    msg = problem(rows=[{"sentence": "Sales rose.", "sentiment": "positive"}], text_column="body")
    assert "'body'" in msg and "sentence, sentiment" in msg
    assert "label column" in problem(rows=[{"text": "Sales rose."}])
    msg = problem(rows=[{"text": "a", "label": "up"}, {"text": "b", "label": "down"}], labels=["positive", "negative"])
    assert "down" in msg and "up" in msg and "data.labels" in msg
    assert "at least two" in problem(rows=[{"text": "a", "label": "x"}, {"text": "b", "label": "x"}])
    assert "3 tokens but 2 tags" in problem("ner", rows=[{"tokens": ["a", "b", "c"], "tags": ["O", "O"]}])
    assert "not BIO" in problem("ner", rows=[{"tokens": ["Paris"], "tags": ["LOCATION"]}] * 2)
    assert "no entities" in problem("ner", rows=[{"tokens": ["a"], "tags": ["O"]}] * 2)
    msg = problem("ner", rows=[{"words": ["Paris"], "tags": ["B-LOC"]}], text_column="toks")
    assert "tokens" in msg and "words, tags" in msg
    with pytest.raises(EncoderDataError, match="feedback"):
        load_encoder_data(_config(task="classification", data={"source": "feedback"}), settings)


def test_a_saved_dataset_gives_text_and_label_through_its_mapping(settings):
    import pandas as pd

    from llmplay.datasets import ColumnMapping, save_dataset

    df = pd.DataFrame(
        [["Profit rose.", "positive"], ["Sales fell.", "negative"], ["Based in Espoo.", "neutral"]] * 4,
        columns=["sentence", "gold"],
    )
    save_dataset(settings, "tiny-fpb", df, ColumnMapping({"text": "sentence"}, "gold"))
    data = load_encoder_data(_config(task="classification", data={"dataset": "tiny-fpb"}), settings)
    assert data.labels == ["negative", "neutral", "positive"]
    assert {r["text"] for r in data.train + data.validation} == {"Profit rose.", "Sales fell.", "Based in Espoo."}
    assert len(data.train) + len(data.validation) == 12 and data.validation


def test_preview_marks_what_is_trained_and_counts_rows_past_max_length(settings):
    from llmplay.training.encoder import encoder_preview

    long = "Profits rose again " * 30
    rows = [{"text": "Sales fell.", "label": "negative"}, {"text": long, "label": "positive"}] * 3
    config = _config(task="classification", max_length=16, data={"source": "rows", "rows": rows})
    preview = encoder_preview(config, settings)
    assert preview.truncated == 3 and any("max_length=16" in w for w in preview.warnings)
    assert preview.token_stats["max"] > 16 and preview.train_rows + preview.validation_rows == 6
    sales = next(e for e in preview.examples if e.text.startswith("Sales"))
    assert sales.segments == [{"text": "Sales fell.", "trained": False}, {"text": " -> negative", "trained": True}]
    assert sales.text == "Sales fell.⟦ -> negative⟧"
    tags = [
        {"tokens": ["Peter", "met", "EU", "officials"], "tags": ["B-PER", "O", "B-ORG", "O"], "doc": d}
        for d in range(4)
    ]
    ner = encoder_preview(
        _config(task="ner", data={"source": "rows", "rows": tags, "validation_fraction": 0.25}), settings
    )
    assert ner.examples[0].text == "Peter ⟦B-PER ⟧met EU ⟦B-ORG ⟧officials "
    assert ner.train_rows == 3 and ner.validation_rows == 1 and ner.truncated == 0


# ---- model checks before training ------------------------------------------------------------------------------


def test_bad_settings_that_need_the_model_fail_before_training(settings, tmp_path):
    rows = [{"text": "Profit rose.", "label": "positive"}, {"text": "Sales fell.", "label": "negative"}] * 4
    data = {"source": "rows", "rows": rows, "validation_fraction": 0}

    def problem(**values) -> str:
        with pytest.raises(LlmplayError) as err:
            train_encoder(_config(task="classification", data=data, **values), settings, tmp_path / "job")
        return str(err.value)

    assert "only 6 layers" in problem(method="full", freeze_layers=7)
    assert "method full" in problem(method="lora", freeze_layers=2)
    msg = problem(method="lora", target_modules=["q_proj", "value"])
    assert "q_proj" in msg and "query" in msg and "dense" in msg
    assert "chat model" in problem(base_model="smollm2-135m-instruct")
    assert "No trained version" in problem(parent_version="nothing v1")
    registry.register(settings.db_path, name="ner-x", base_model=ENCODER, kind="tagger", path=tmp_path)
    assert "is a tagger" in problem(parent_version="ner-x v1")
    registry.register(settings.db_path, name="other", base_model="bert-base-cased", kind="classifier", path=tmp_path)
    assert "trained on 'bert-base-cased'" in problem(parent_version="other v1")
    assert not (tmp_path / "job" / "model").exists()  # nothing was trained or saved


# ---- real runs -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ner_job(tmp_path_factory, session_settings):
    if not CONLL.exists():
        pytest.skip("needs ../shared/datasets/conll2003")
    folder = tmp_path_factory.mktemp("ner-job")
    config = _config(
        task="ner",
        method="full",
        data={"source": "rows", "rows": _ner_rows(), "validation_fraction": 0.25},
        max_steps=14,
        learning_rate=1e-3,
        warmup_ratio=0.0,
    )
    result = train_encoder(config, session_settings, folder)
    held_out = load_encoder_data(config, session_settings).validation
    return result, held_out, folder


_PROMPTS = (
    "select o.prompt from eval_cells c join eval_outputs o on o.id = c.output_id "
    "where c.run_id = ? order by c.row_index"
)


def _tagger_f1(engine, name: str, rows: list[dict]) -> float:
    replies = engine.generate(name, [GenerationRequest.of(" ".join(r["tokens"])) for r in rows])
    assert all(r.ok for r in replies)
    return f1_score([r["tags"] for r in rows], [r.details["tags"] for r in replies], zero_division=0)


@needs_shared
def test_ner_run_beats_the_untrained_head_on_held_out_documents(ner_job, session_settings, tmp_path):
    result, held_out, _ = ner_job
    assert result.kind == "tagger" and result.completed and result.steps == 14
    assert result.labels == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert result.history and all("entity_f1" in h for h in result.history)  # evaluated at each epoch's end
    assert result.history[-1]["step"] == result.steps
    engine = Engine(session_settings)
    trained = _tagger_f1(engine, _serve(engine, "ner-trained", "tagger", result.output_dir), held_out)
    before = _untrained(tmp_path / "fresh", "ner", result.labels)
    untrained = _tagger_f1(engine, _serve(engine, "ner-untrained", "tagger", before), held_out)
    assert trained > untrained + 0.2, (trained, untrained)
    assert trained == pytest.approx(result.metrics["entity_f1"], abs=0.05)  # served == the job's evaluation
    config = json.loads((result.output_dir / "config.json").read_text())
    assert config["id2label"]["7"] == "B-PER" and config["architectures"] == ["BertForTokenClassification"]


@needs_shared
def test_the_tagger_as_an_evaluation_column_is_scored_by_seqeval(ner_job, session_settings):
    import pandas as pd

    from llmplay.datasets import ColumnMapping, save_dataset
    from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
    from llmplay.evaluation.results import get_run
    from llmplay.evaluation.runner import EvalRunner
    from llmplay.store import connect
    from llmplay.templates.library import TemplateLibrary

    result, held_out, folder = ner_job
    engine = Engine(session_settings)
    name = _serve(engine, "ner-column", "tagger", result.output_dir)
    rows = held_out[:24]
    df = pd.DataFrame(
        [[" ".join(r["tokens"]), json.dumps(r["tokens"]), json.dumps(r["tags"])] for r in rows],
        columns=["text", "tokens", "tags"],
    )
    save_dataset(session_settings, "conll-held-out", df, ColumnMapping({"text": "text"}, "tags"))
    prompts = folder / "prompts"
    shutil.copytree(ROOT / "prompts", prompts, ignore=shutil.ignore_patterns("README.md"), dirs_exist_ok=True)
    runner = EvalRunner(engine, TemplateLibrary(prompts, session_settings.db_path))
    column = ColumnConfig("ner-extraction", name, mode="likelihood")  # a tagger has no likelihood: generate
    run_id = runner.run(RunConfig(dataset="conll-held-out", columns=(column,), metrics=(MetricConfig("entity_f1"),)))
    info = get_run(session_settings, run_id)
    assert info.status == "done", info.error
    score = info.summary["columns"][0]["metrics"]["entity_f1"]["score"]
    with connect(session_settings.db_path) as db:  # the tagger read each row's text, not the instruction
        seen = [r["prompt"] for r in db.query(_PROMPTS, [run_id])]
    assert seen == [" ".join(r["tokens"]) for r in rows]
    direct = engine.generate(name, [GenerationRequest.of(" ".join(r["tokens"])) for r in rows])
    expected = f1_score([r["tags"] for r in rows], [r.details["tags"] for r in direct], zero_division=0)
    assert score == pytest.approx(expected, abs=1e-6)
    assert 0 < score <= 1
    assert info.summary["columns"][0]["mode"] == "generate"


@needs_shared
def test_lora_classifier_lowers_the_loss_on_its_rows_and_trains_the_head(session_settings, tmp_path):
    import math

    rows = _fpb_rows(30)
    config = _config(
        task="classification",
        method="lora",
        data={"source": "rows", "rows": rows, "validation_fraction": 0.2},
        max_steps=8,
        batch_size=8,
        learning_rate=2e-3,
        warmup_ratio=0.0,
    )
    result = train_encoder(config, session_settings, tmp_path / "job")
    assert result.kind == "classifier" and result.trainable_params < result.total_params / 10
    assert {"accuracy", "macro_f1", "loss"} <= set(result.metrics)
    engine = Engine(session_settings)
    train = load_encoder_data(config, session_settings).train

    def loss(name: str) -> float:
        replies = engine.generate(name, [r["text"] for r in train])
        return sum(-math.log(max(rep.details["probabilities"][r["label"]], 1e-9)) for rep, r in zip(replies, train))

    after = loss(_serve(engine, "fpb-lora", "classifier", result.output_dir))
    before = loss(
        _serve(engine, "fpb-fresh", "classifier", _untrained(tmp_path / "fresh", "classification", result.labels))
    )
    assert after < before * 0.9, (before, after)
    # Merged: the saved folder is a plain classifier (no adapter files), the trained head inside it.
    assert not list(result.output_dir.glob("adapter_*")) and (result.output_dir / "model.safetensors").exists()


@needs_shared
def test_freeze_layers_keeps_the_embeddings_and_lower_layers_unchanged(session_settings, tmp_path):
    from safetensors.torch import load_file

    config = _config(
        task="classification",
        method="full",
        freeze_layers=2,
        data={"source": "rows", "rows": _fpb_rows(24), "validation_fraction": 0},
        max_steps=3,
        batch_size=8,
        learning_rate=1e-3,
    )
    result = train_encoder(config, session_settings, tmp_path / "job")
    base = load_file(str(Path(resolve_encoder(config, session_settings).folder) / "model.safetensors"))
    tuned = load_file(str(result.output_dir / "model.safetensors"))

    def same(prefix: str) -> bool:
        names = [n for n in tuned if n.startswith(prefix)]
        assert names, prefix
        return all((tuned[n] == base[n.removeprefix("bert.")]).all() for n in names)

    assert same("bert.embeddings.") and same("bert.encoder.layer.0.") and same("bert.encoder.layer.1.")
    assert not same("bert.encoder.layer.2.") and not same("bert.encoder.layer.5.")


def test_masked_lm_continued_pretraining_runs_and_saves_an_encoder(session_settings, tmp_path):
    text = tmp_path / "domain.txt"
    text.write_text(
        "\n".join(
            f"Operating profit rose to EUR {n}.{n % 10} mn from EUR {n - 3}.1 mn in the corresponding period."
            for n in range(10, 40)
        ),
        encoding="utf-8",
    )
    config = _config(task="mlm", method="full", data={"source": "file", "file": str(text)}, max_steps=2)
    result = train_encoder(config, session_settings, tmp_path / "job")
    assert result.kind == "encoder" and result.steps == 2 and result.labels == []
    assert result.metrics["perplexity"] > 1
    meta = json.loads((result.output_dir / "llmplay_encoder.json").read_text())
    assert meta["task"] == "mlm" and meta["base_model"] == ENCODER
    # The domain-adapted encoder is a version a classifier job continues from, with a fresh head.
    version = registry.register(
        session_settings.db_path, name="fin-mlm", base_model=ENCODER, kind="encoder", path=result.output_dir
    )
    rows = [{"text": "Profit rose.", "label": "positive"}, {"text": "Sales fell.", "label": "negative"}] * 4
    follow = _config(
        task="classification", parent_version=version.label, data={"source": "rows", "rows": rows}, max_steps=1
    )
    assert resolve_encoder(follow, session_settings).folder == str(result.output_dir)
    assert train_encoder(follow, session_settings, tmp_path / "follow").completed


@needs_shared
def test_a_stopped_job_keeps_its_checkpoint_saves_no_model_and_resumes_to_the_end(session_settings, tmp_path):
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):  # what the job's cancel callback does on SIGTERM
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                control.should_save = control.should_training_stop = True

    config = _config(
        task="classification",
        method="full",
        data={"source": "rows", "rows": _fpb_rows(24), "validation_fraction": 0.25},
        max_steps=6,
        batch_size=4,
        save_steps=100,
    )
    job = tmp_path / "job"
    stopped = train_encoder(config, session_settings, job, [StopAt()])
    assert not stopped.completed and stopped.steps == 3
    assert not (job / "model").exists()
    assert (job / "checkpoints" / "checkpoint-3").is_dir()
    resumed = train_encoder(config, session_settings, job, resume_from=True)
    assert resumed.completed and resumed.steps == 6
    assert (job / "model" / "model.safetensors").exists() and "accuracy" in resumed.metrics


@needs_shared
def test_the_entry_point_trains_registers_and_the_version_answers_by_its_label(tmp_path, model_cache_dir, monkeypatch):
    import yaml

    from llmplay.settings import Settings
    from llmplay.training import entry, records

    monkeypatch.setenv("LLMPLAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LLMPLAY_CACHE_DIR", str(model_cache_dir))
    config = {
        "name": "fpb-minilm",
        "base_model": ENCODER,
        "task": "classification",
        "method": "full",
        "data": {"source": "rows", "rows": _fpb_rows(24), "validation_fraction": 0.25},
        "max_steps": 3,
        "batch_size": 8,
        "max_length": 64,
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    before = signal.getsignal(signal.SIGTERM)
    try:
        assert entry.main([str(path)]) == 0
    finally:
        signal.signal(signal.SIGTERM, before)  # the entry installs its cancel handler
    settings = Settings.from_env()
    [job] = records.list_jobs(settings.db_path)
    assert job.status == "done" and job.version_id
    version = registry.get_version(settings.db_path, job.version_id)
    assert (version.label, version.kind, version.task) == ("fpb-minilm v1", "classifier", "classification")
    assert Path(version.path).name == f"job-{job.id}" and "accuracy" in version.metrics
    assert records.progress(settings.db_path, job.id)  # progress rows were written while it trained
    engine = Engine(settings)
    assert "fpb-minilm v1" in [s.name for s in engine.catalog.versions()]
    [reply] = engine.generate("fpb-minilm v1", ["Operating profit more than doubled."])
    assert reply.ok and reply.text in ("positive", "negative", "neutral")
