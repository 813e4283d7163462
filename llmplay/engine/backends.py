"""Which backend decodes a streamed reply of a local model, and in what precision.

Two backends: ``transformers`` (the reference: its ``generate`` in the model's loaded dtype) and ``fast``
(llmplay.engine.fast_decoder: a lean loop over a converted copy of the weights). A choice is written
"transformers" or "fast/<precision>"; "auto" means the fast path in the configured precision wherever it
runs the model, else transformers. Batched generation (evaluation runs) uses transformers unless
``Settings.batch_backend`` is "fast/bfloat16" (``batch_decoder``): either way a reply is the one its prompt gets
when decoded alone on the same path, which the evaluation cache relies on.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from llmplay.backend_names import AUTO, FAST, REFERENCE, check_batch_choice, check_choice
from llmplay.engine.fast_decoder import FastDecoder, unsupported_reason

log = logging.getLogger(__name__)

# How a stream's status line starts when the fast path was asked for but not used (callers show it as a note).
FALLBACK = "Ran on the reference backend"
_CONVERTING = threading.Lock()


@dataclass(frozen=True)
class Plan:
    """The backend that will decode: ``decoder`` is None for transformers; ``note`` says why the fast path
    was not used when it was asked for (an unsupported model)."""

    label: str  # e.g. "fast float16", "transformers float32"
    decoder: FastDecoder | None = None
    note: str | None = None


def dtype_name(loaded) -> str:
    return str(loaded.dtype).removeprefix("torch.")


def reference_label(loaded) -> str:
    return f"{REFERENCE} {dtype_name(loaded)}"


def plan(loaded, choice: str, default_precision: str) -> Plan:
    """Decide (and convert the weights once per loaded model and precision) for one streamed reply."""
    choice = check_choice(choice)
    reference = Plan(reference_label(loaded))
    if choice == REFERENCE:
        return reference
    precision = default_precision if choice in (AUTO, FAST) else choice.split("/", 1)[1]
    reason = unsupported_reason(loaded.model)
    if reason:
        return Plan(reference.label, note=f"{FALLBACK}: {reason}.")
    return Plan(f"{FAST} {precision}", decoder=converted(loaded, precision))


def batch_decoder(loaded, choice: str, params) -> FastDecoder | None:
    """The fast decoder that decodes an evaluation batch under ``choice`` (``Settings.batch_backend``), or None
    for transformers: the reference, and what every request the fast batches do not cover runs on (sampling,
    a repetition penalty, a prompt-tuning adapter, an architecture the fast decoder does not implement)."""
    if check_batch_choice(choice) == REFERENCE or not params.greedy or params.repetition_penalty != 1.0:
        return None
    if unsupported_reason(loaded.model):
        return None
    return converted(loaded, choice.split("/", 1)[1])


def converted(loaded, precision: str) -> FastDecoder:
    """The fast decoder's copy of ``loaded``'s weights in ``precision``, converted on first use.

    Kept on the LoadedModel, so a new adapter version (a new LoadedModel, keyed by the adapter's content)
    converts its own merged weights and never reuses another version's."""
    key = ("fast", precision)
    decoder = loaded.conversions.get(key)
    if decoder is None:
        with _CONVERTING:
            decoder = loaded.conversions.get(key)
            if decoder is None:
                decoder = FastDecoder(loaded.model, precision)
                log.info("fast decoder: %s in %s, converted in %.2f s", loaded.spec.name, precision, decoder.convert_s)
                loaded.conversions[key] = decoder
    return decoder
