"""The encoder provider (fine-tuned classifiers and taggers as catalog models) on the real bundled MiniLM.

The heads here are set by hand, so each test knows the answer the provider must give: a bias that makes one
label win says whether labels, probabilities and the display form come out right, whatever the text.
"""

from __future__ import annotations

import math
import tempfile
import threading
from pathlib import Path

import pytest

from llmplay.engine import Engine, GenerationRequest
from llmplay.engine.encoder import EncoderProvider, encoder_input
from llmplay.models.catalog import ModelSpec
from llmplay.models.embeddings import get_embedder

CLASSES = ["negative", "neutral", "positive"]
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TEXTS = ["Operating profit rose to EUR 13.1 mn .", "The shares fell .", "Nokia is based in Espoo , Finland ."]


def _minilm_folder() -> str:
    from llmplay.models import sources
    from llmplay.models.catalog import Catalog

    return sources.resolve(Catalog().get("all-minilm-l6-v2"), Path(tempfile.gettempdir())).path


def _save_head(folder, kind: str, labels: list[str], bias: dict[str, float] | None, seed: int = 0) -> str:
    """MiniLM with a head for ``labels``: weights zero and the given bias (a fixed answer), or seeded random."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

    auto = AutoModelForTokenClassification if kind == "tagger" else AutoModelForSequenceClassification
    torch.manual_seed(seed)
    base = _minilm_folder()
    model = auto.from_pretrained(
        base, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)}
    )
    if bias is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor([bias.get(x, 0.0) for x in labels]))
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(base).save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def heads(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("encoder-heads")
    return {
        "positive": _save_head(root / "positive", "classifier", CLASSES, {"positive": 5.0}),
        "random": _save_head(root / "random", "classifier", CLASSES, None, seed=3),
        "person": _save_head(root / "person", "tagger", TAGS, {"I-PER": 5.0}),
        "nothing": _save_head(root / "nothing", "tagger", TAGS, {"O": 5.0}),
    }


@pytest.fixture(scope="module")
def encoders(heads, session_settings) -> Engine:
    """An engine whose catalog has the hand-made heads as classifier / tagger models (not the session's)."""
    eng = Engine(session_settings)
    for name, folder in heads.items():
        kind = "classifier" if name in ("positive", "random") else "tagger"
        eng.catalog.add(ModelSpec(name=f"head-{name}", kind=kind, source="local", location=folder), persist=False)
    return eng


def test_classifier_answers_its_label_with_probabilities(encoders):
    assert isinstance(encoders.provider("head-positive"), EncoderProvider)
    results = encoders.generate("head-positive", TEXTS)
    expected = math.exp(5) / (math.exp(5) + 2)  # softmax of (0, 0, 5)
    for result in results:
        assert result.ok and result.text == "positive"
        probs = result.details["probabilities"]
        assert list(probs) == ["positive", "negative", "neutral"]  # most likely first
        assert probs["positive"] == pytest.approx(expected, abs=1e-4)
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert result.completion_tokens == 0 and result.prompt_tokens > 2


def test_stream_shows_the_label_with_its_probability_in_one_event(encoders):
    events = list(encoders.stream("head-positive", "Profits doubled."))
    deltas = [e.delta for e in events if e.delta]
    assert deltas == ["positive (0.99) · negative (0.01) · neutral (0.01)"]
    final = events[-1]
    assert final.done and final.result.text == deltas[0]
    assert final.result.details["label"] == "positive"  # the bare label stays in the details


def test_reads_only_the_last_user_message(encoders):
    tokenizer = get_embedder().tokenizer  # the same MiniLM vocabulary
    chat = [
        {"role": "system", "content": "You label sentiment of long financial news articles for investors."},
        {"role": "user", "content": "Sales fell sharply in the third quarter."},
        {"role": "assistant", "content": "negative"},
        {"role": "user", "content": "Profit rose."},
    ]
    request = GenerationRequest.of(chat)
    assert encoder_input(request) == "Profit rose."
    [result] = encoders.generate("head-random", [request])
    assert result.prompt_tokens == len(tokenizer("Profit rose.")["input_ids"])
    [alone] = encoders.generate("head-random", ["Profit rose."])
    assert result.details == alone.details


def test_batched_equals_one_at_a_time(encoders):
    texts = TEXTS + ["A much longer sentence about the company and its new factory in the north of Finland ."]
    batched = encoders.generate("head-random", texts)
    single = [encoders.generate("head-random", [t])[0] for t in texts]
    for b, s in zip(batched, single):
        assert b.text == s.text
        for label in CLASSES:
            assert b.details["probabilities"][label] == pytest.approx(s.details["probabilities"][label], abs=1e-4)


def test_tagger_lists_entities_in_the_format_the_scorer_reads(encoders):
    from llmplay.evaluation.scorer import entity_lines_to_bio

    [result] = encoders.generate("head-person", ["John Kaczmarczyk visited Espoo"])
    # Every word is I-PER: the first starts the entity (as seqeval reads IOB), the rest continue it.
    assert result.text == "PER: John Kaczmarczyk visited Espoo"
    assert result.details["tags"] == ["I-PER"] * 4
    assert entity_lines_to_bio(result.text, ["John", "Kaczmarczyk", "visited", "Espoo"]) == ["B-PER"] + ["I-PER"] * 3
    [none] = encoders.generate("head-nothing", ["John visited Espoo"])
    assert none.text == "NONE" and none.details["entities"] == []
    events = list(encoders.stream("head-nothing", "John visited Espoo"))
    assert events[-1].result.text == "No entities found."


def test_bad_requests_and_cancel_are_error_results(encoders):
    empty, ok = encoders.generate("head-positive", ["   ", "Fine."])
    assert empty.error and "empty" in empty.error
    assert ok.ok
    cancel = threading.Event()
    cancel.set()
    [cancelled] = encoders.generate("head-positive", ["Fine."], cancel=cancel)
    assert cancelled.finish_reason == "cancelled"


def test_an_encoder_belongs_to_the_engine_that_loaded_it_and_goes_when_it_closes(heads, session_settings):
    """One ownership rule for loaded models: encoders live in the engine's model manager, as causal models do."""
    spec = ModelSpec(name="head-owned", kind="classifier", source="local", location=heads["positive"])
    one, other = Engine(session_settings), Engine(session_settings)  # ownership is what this tests
    for eng in (one, other):
        eng.catalog.add(spec, persist=False)
    [result] = one.generate("head-owned", ["Profit rose."])
    assert result.ok
    assert one.models.is_encoder_loaded(heads["positive"], "classifier")
    assert not other.models.is_encoder_loaded(heads["positive"], "classifier")
    assert one.provider("head-owned").load() is one.models.encoder(heads["positive"], "classifier")
    one.close()
    assert not one.models.is_encoder_loaded(heads["positive"], "classifier")


def test_missing_folder_is_a_clear_error(session_settings, tmp_path):
    spec = ModelSpec(name="gone", kind="classifier", source="local", location=str(tmp_path))
    [result] = EncoderProvider(spec, session_settings).generate([GenerationRequest.of("hello")])
    assert result.error and "config.json" in result.error


def test_a_registered_classifier_version_answers_by_its_label(heads, settings):
    from llmplay.models import registry

    version = registry.register(
        settings.db_path, name="fpb-cls", base_model="all-minilm-l6-v2", kind="classifier", path=Path(heads["positive"])
    )
    assert version.label == "fpb-cls v1"
    engine = Engine(settings)
    assert "fpb-cls v1" in [s.name for s in engine.catalog.versions()]
    assert isinstance(engine.provider("fpb-cls v1"), EncoderProvider)
    [result] = engine.generate("fpb-cls v1", ["Net sales doubled."])
    assert result.text == "positive" and result.model == "fpb-cls v1"


def test_a_template_hands_an_encoder_its_text_variable_not_the_instruction():
    from llmplay.templates.model import parse_template
    from llmplay.templates.render import build_request
    from tests.conftest import ROOT

    def template(name: str):
        return parse_template((ROOT / "prompts" / f"{name}.yaml").read_text(encoding="utf-8"), name)

    request, messages = build_request(template("financial-sentiment"), "classifier", {"text": "Profit rose."})
    assert request.prompt == "Profit rose." and request.messages is None
    assert "Profit rose." in messages[-1]["content"] and len(messages[-1]["content"]) > 40  # the full render
    request, _ = build_request(template("intent-detection"), "tagger", {"message": "I lost my card"})
    assert request.prompt == "I lost my card"  # no "text" variable: the first required one
