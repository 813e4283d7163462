"""Fine-tuned encoders as models: a ``classifier`` answers with a label, a ``tagger`` with the entities it found.

The input is the user's text, not an instruction: the last user message of a chat request (the Playground,
Compare), the raw prompt otherwise, and for a template the row's text variable (``templates.render``). Nothing is
generated, so a reply is one forward pass; ``generate`` runs many texts as padded batches.

Two forms of the same answer:
- ``generate`` (evaluation runs) returns the bare answer the metrics score: the label (``positive``), or one
  ``TYPE: entity`` line per entity (``NONE`` when there is none) - the format ``evaluation.scorer`` rebuilds BIO
  tags from. ``result.details`` holds the per-label probabilities or the entities with their scores.
- ``stream`` (Playground, Compare) yields one event whose text is for people: the label with its probability
  and the other labels' (``positive (0.93) · neutral (0.05) · negative (0.02)``), or the entity lines.

Weights load once per engine (its model manager, ``engine.models``, owns them as it owns causal models) and are
shared by every provider of the same folder; a folder whose files change (a new version written in place) loads
afresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

from llmplay.engine.base import Provider
from llmplay.engine.types import GenerationRequest, GenerationResult, StreamEvent
from llmplay.errors import LlmplayError
from llmplay.models.loader import LoadedEncoder, ModelManager

PREDICTOR_KINDS = ("classifier", "tagger")  # catalog kinds served here
NO_ENTITIES = "NONE"  # what ner-extraction's output spec writes for a sentence without entities
TOKEN_BUDGET = 16 * 1024  # padded tokens per batch


def encoder_input(request: GenerationRequest) -> str:
    """The text an encoder reads from a request: the last user message, or the raw prompt."""
    if request.messages is not None:
        users = [m.content for m in request.messages if m.role == "user"]
        return users[-1] if users else ""
    return request.prompt or ""


class EncoderProvider(Provider):
    """Serves a catalog model of kind ``classifier`` or ``tagger`` (local folder, Hub id or bundle)."""

    def __init__(self, spec, settings, manager: ModelManager | None = None, **_ignored):
        super().__init__(spec, settings)
        self.manager = manager or ModelManager(settings)  # the engine's; a provider built alone has its own
        if spec.kind not in PREDICTOR_KINDS:
            raise LlmplayError(
                f"{spec.name!r} is a {spec.kind} model; the encoder provider serves classifiers/taggers."
            )

    def folder(self) -> str:
        from llmplay.models import sources

        return sources.resolve(self.spec, Path(self.settings.cache_dir) / "_gguf").path

    def load(self) -> LoadedEncoder:
        return self.manager.encoder(self.folder(), self.spec.kind)

    def is_loaded(self) -> bool:
        try:
            return self.manager.is_encoder_loaded(self.folder(), self.spec.kind)
        except LlmplayError:
            return False

    # ---- batched ---------------------------------------------------------------------------------------------
    def generate(
        self, requests: list[GenerationRequest], cancel: threading.Event | None = None
    ) -> list[GenerationResult]:
        results: list[GenerationResult | None] = [None] * len(requests)
        try:
            encoder = self.load()
        except LlmplayError as exc:
            return [GenerationResult.failure(str(exc), self.spec.name) for _ in requests]
        texts: list[tuple[int, str]] = []
        for i, request in enumerate(requests):
            try:
                self.check_request(request)
                texts.append((i, encoder_input(request)))
            except LlmplayError as exc:
                results[i] = GenerationResult.failure(str(exc), self.spec.name)
        texts.sort(key=lambda item: len(item[1]))  # similar lengths per batch: little padding
        size = max(1, self.settings.max_batch_size)
        for start in range(0, len(texts), size):
            batch = texts[start : start + size]
            if cancel is not None and cancel.is_set():
                for i, _ in batch:
                    results[i] = self.cancelled_result(self.spec.name)
                continue
            try:
                answers = self._predict(encoder, [t for _, t in batch])
            except Exception as exc:  # a crash in one batch must not take the others down
                answers = [GenerationResult.failure(f"Prediction failed: {exc}", self.spec.name) for _ in batch]
            for (i, _), result in zip(batch, answers):
                results[i] = result
        return [r for r in results if r is not None]

    def _predict(self, encoder: LoadedEncoder, texts: list[str]) -> list[GenerationResult]:
        import torch

        started = time.perf_counter()
        tok = encoder.tokenizer
        if self.spec.kind == "tagger":
            words = [t.split() for t in texts]
            batch = tok(
                words,
                is_split_into_words=True,
                truncation=True,
                max_length=encoder.max_length,
                padding=True,
                return_tensors="pt",
            )
        else:
            batch = tok(texts, truncation=True, max_length=encoder.max_length, padding=True, return_tensors="pt")
        with encoder.lock, torch.inference_mode():
            logits = encoder.model(**batch).logits.float()
        probs = torch.softmax(logits, dim=-1)
        elapsed = (time.perf_counter() - started) / max(1, len(texts))  # each row's share of the batch
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        out = []
        for row in range(len(texts)):
            if self.spec.kind == "tagger":
                text, details = _entities(words[row], batch.word_ids(row), probs[row], encoder.labels)
            else:
                text, details = _label(probs[row], encoder.labels)
            out.append(
                GenerationResult(
                    text=text, prompt_tokens=int(lengths[row]), latency_s=elapsed, model=self.spec.name, details=details
                )
            )
        return out

    # ---- streaming: one event with the whole answer ----------------------------------------------------------
    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        if not self.is_loaded():
            yield StreamEvent(status=f"Loading {self.spec.name}")
        [result] = self.generate([request])
        if result.ok:
            result.text = display_text(result, self.spec.kind)
            result.time_to_first_token_s = result.latency_s
            yield StreamEvent(delta=result.text)
        yield StreamEvent(done=True, result=result)


def _label(probs, labels: list[str]) -> tuple[str, dict]:
    scores = {labels[i]: round(float(p), 4) for i, p in enumerate(probs.tolist())}
    ranked = dict(sorted(scores.items(), key=lambda kv: -kv[1]))
    best = next(iter(ranked))
    return best, {"label": best, "probabilities": ranked}


def _entities(words: list[str], word_ids: list[int | None], probs, labels: list[str]) -> tuple[str, dict]:
    """Entities from each word's first sub-token's tag; an ``I-X`` that follows no ``X`` starts one (as seqeval
    reads it). Words cut off by the length limit are ``O``."""
    tags, scores = ["O"] * len(words), [1.0] * len(words)
    previous = None
    best = probs.max(dim=-1)
    for position, word in enumerate(word_ids):
        if word is not None and word != previous:
            tags[word] = labels[int(best.indices[position])]
            scores[word] = float(best.values[position])
        previous = word
    entities, current = [], None
    for i, tag in enumerate(tags):
        kind = tag[2:] if tag[:2] in ("B-", "I-") else None
        if kind and current and tag.startswith("I-") and current["type"] == kind:
            current["end"] = i + 1
            current["scores"].append(scores[i])
            continue
        current = {"type": kind, "start": i, "end": i + 1, "scores": [scores[i]]} if kind else None
        if current:
            entities.append(current)
    found = [
        {
            "type": e["type"],
            "text": " ".join(words[e["start"] : e["end"]]),
            "start": e["start"],
            "end": e["end"],
            "score": round(min(e["scores"]), 4),
        }
        for e in entities
    ]
    text = "\n".join(f"{e['type']}: {e['text']}" for e in found) or NO_ENTITIES
    return text, {"entities": found, "tags": tags}


def display_text(result: GenerationResult, kind: str) -> str:
    """The answer as a person reads it: label with probabilities, or the entity lines."""
    details = result.details or {}
    if kind == "classifier" and details.get("probabilities"):
        return " · ".join(f"{label} ({p:.2f})" for label, p in details["probabilities"].items())
    if kind == "tagger" and not details.get("entities"):
        return "No entities found."
    return result.text
