"""Which backend decodes a streamed reply of a local model, and in what precision.

Three backends: ``transformers`` (the reference: its ``generate`` in the model's loaded dtype), ``fast``
(llmplay.engine.fast_decoder: a lean loop over a converted copy of the weights) and ``onnx``
(llmplay.engine.onnx_decoder: ONNX Runtime GenAI steps over an exported copy). A choice is written
"transformers", "fast/<precision>" or "onnx/<precision>"; "auto" means onnx int8 where it runs the model and its
export is ready, else the fast path in the configured precision wherever it runs the model, else transformers.
Batched generation (evaluation runs) decodes on transformers or on ONNX Runtime ("onnx/<precision>",
``batch_decoder``); ``Settings.batch_backend`` "auto" picks one of the two by estimated time: once per call
(``choose_batch``), or once for all the auto columns of an evaluation run (llmplay.evaluation.batch_choice).
Either way a reply is the one its prompt gets when decoded alone on the same path, which the evaluation cache
relies on.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from llmplay.backend_names import AUTO, FAST, ONNX, REFERENCE, check_batch_choice, check_choice
from llmplay.engine import onnx_decoder
from llmplay.engine.fast_decoder import FastDecoder, unsupported_reason

log = logging.getLogger(__name__)

# How a stream's status line starts when the fast path was asked for but not used (callers show it as a note).
FALLBACK = "Ran on the reference backend"
_CONVERTING = threading.Lock()
_EXPORTING = threading.Lock()  # ONNX exports take turns (each is a subprocess using every core for 10-30 s)
AUTO_ONNX = "int8"  # what "auto" streams on where ONNX Runtime runs the model (bench/generation.py: why)
# What "auto" evaluation batches decode on when not on transformers. Not w8a8 (llmplay/engine/onnx_rows.py), though
# its batches ran 1.7x int8's: rounding every activation changed what SmolLM2 answers (the first three words of 10
# of 27 AlpacaEval replies equal float32's, int8's 22), so it is a choice to pin, not the default.
BATCH_ONNX = AUTO_ONNX


def auto_export() -> bool:
    """Whether "auto" starts a missing ONNX export in the background (LLMPLAY_ONNX_AUTO_EXPORT=0: it only uses
    exports already on disk; the tests' default, so a reply's backend never changes halfway through a test)."""
    return os.environ.get("LLMPLAY_ONNX_AUTO_EXPORT", "1") != "0"


@dataclass(frozen=True)
class Plan:
    """The backend that will decode: ``decoder`` is None for transformers; ``note`` says why the fast path
    was not used when it was asked for (an unsupported model)."""

    label: str  # e.g. "fast float16", "transformers float32", "onnx int8"
    decoder: FastDecoder | onnx_decoder.OnnxDecoder | None = None
    note: str | None = None


def dtype_name(loaded) -> str:
    return str(loaded.dtype).removeprefix("torch.")


def reference_label(loaded) -> str:
    return f"{REFERENCE} {dtype_name(loaded)}"


def plan(loaded, choice: str, default_precision: str, cache_dir=None) -> Plan:
    """Decide (and convert the weights once per loaded model and precision) for one streamed reply.

    ``cache_dir``: where ONNX exports are kept. "auto" decodes on ONNX Runtime int8 where it runs the model and
    its export is ready; a model's first export (once per weights: 10-30 s) runs in the background while its
    replies decode on the fast path, with a note."""
    choice = check_choice(choice)
    reference = Plan(reference_label(loaded))
    if choice == REFERENCE:
        return reference
    if choice.startswith(f"{ONNX}/"):
        precision = choice.split("/", 1)[1]
        reason = onnx_decoder.unsupported_reason(loaded.model) or (None if cache_dir else "no model cache to export to")
        if reason:
            return Plan(reference.label, note=f"{FALLBACK}: {reason}.")
        decoder = onnx_converted(loaded, precision, cache_dir)
        return Plan(decoder.label, decoder=decoder)
    note = None
    if choice == AUTO and cache_dir is not None and not onnx_decoder.unsupported_reason(loaded.model):
        decoder, note = onnx_ready(loaded, AUTO_ONNX, cache_dir)
        if decoder is not None:
            return Plan(decoder.label, decoder=decoder)
    precision = default_precision if choice in (AUTO, FAST) else choice.split("/", 1)[1]
    reason = unsupported_reason(loaded.model)
    if reason:
        return Plan(reference.label, note=f"{FALLBACK}: {reason}.")
    return Plan(f"{FAST} {precision}", decoder=converted(loaded, precision), note=note)


def batch_decoder(loaded, choice: str, params, cache_dir=None) -> onnx_decoder.OnnxDecoder | None:
    """The ONNX Runtime model that decodes an evaluation batch under ``choice`` (``Settings.batch_backend``), or None
    for transformers: the reference, and what every request ONNX batches do not cover runs on (sampling, a
    repetition penalty, a prompt-tuning adapter, an architecture the export does not cover)."""
    choice = check_batch_choice(choice)
    if choice in (REFERENCE, AUTO) or batch_refusal(loaded, params, cache_dir):  # "auto": choose_batch decides
        return None
    return onnx_converted(loaded, choice.split("/", 1)[1], cache_dir)


# What each batch backend computes per second on two cores (SmolLM2-135M; bench/eval_run.py, bench/generation.py):
# (prompt tokens, new tokens). transformers runs a prefix the rows share once, then each row's own tokens; ONNX
# Runtime runs every row's whole prompt (its batches share no prefix) but decodes int8 twice as fast. w8a8: int8's
# rates times what 32 AlpacaEval prompts measured against int8 in one run (prompt pass 4.7 -> 1.95 s, 63 batched
# steps 4.2 -> 3.15 s).
BATCH_RATES = {
    REFERENCE: (550.0, 110.0),
    f"{ONNX}/{AUTO_ONNX}": (450.0, 226.0),
    f"{ONNX}/{onnx_decoder.ROWS}": (1080.0, 300.0),
}


@dataclass(frozen=True)
class BatchShape:
    """What decides a batch backend's time for some rows: how many, their prompt tokens in all, the prefix they
    share (transformers computes it once) and the new tokens each is expected to decode."""

    rows: int
    prompt_tokens: int
    shared_tokens: int
    new_tokens: int

    def seconds(self, backend: str) -> float:
        prompt_rate, decode_rate = BATCH_RATES[backend]
        prompt = self.prompt_tokens
        if backend == REFERENCE and self.rows > 1:
            prompt -= self.shared_tokens * (self.rows - 1)
        return prompt / prompt_rate + self.rows * self.new_tokens / decode_rate


AUTO_BATCH = f"{ONNX}/{BATCH_ONNX}"  # what "auto" batches decode on when not on transformers


def choose_batch(loaded, choice: str, params, shape: BatchShape, cache_dir=None) -> str:
    """The batch backend that decodes rows of ``shape`` under ``choice`` (``Settings.batch_backend`` or a column's):
    "transformers", "onnx/<precision>" as asked (transformers where ONNX batches cannot decode the requests), or
    for "auto" the one ``batch_estimates`` finds sooner, made ready (``ready_for_batches``)."""
    choice = check_batch_choice(choice)
    if choice == REFERENCE or batch_refusal(loaded, params, cache_dir):
        return REFERENCE
    if choice != AUTO:
        return choice
    pick = choose_for_all([batch_estimates(loaded, params, shape, cache_dir)])
    return pick if ready_for_batches(loaded, pick, cache_dir) else REFERENCE


def batch_estimates(loaded, params, shape: BatchShape, cache_dir=None) -> dict[str, float]:
    """Seconds that each batch backend able to decode rows of ``shape`` would take (BATCH_RATES): transformers
    always; onnx/int8 unless the requests sample, penalise repetition or follow a JSON schema, the architecture has
    no export, its ONNX batches cannot pad rows (so would decode one prompt length at a time: Gemma-3), or no
    export is on disk while exports are off."""
    found = {REFERENCE: shape.seconds(REFERENCE)}
    if batch_refusal(loaded, params, cache_dir) or not onnx_decoder.pads_rows(loaded.model):
        return found
    if auto_export() or onnx_decoder.is_converted(onnx_decoder.converted_dir(cache_dir, loaded, BATCH_ONNX)):
        found[AUTO_BATCH] = shape.seconds(AUTO_BATCH)
    return found


def choose_for_all(estimates: list[dict[str, float]]) -> str:
    """One backend for several groups of rows (an evaluation run's columns, so they compare like with like):
    onnx/int8 when every group can decode on it and all of them finish sooner there, else transformers. The caller
    makes the pick ready (``ready_for_batches``) before decoding on it."""
    if not estimates or not all(AUTO_BATCH in e for e in estimates):
        return REFERENCE
    if sum(e[AUTO_BATCH] for e in estimates) >= sum(e[REFERENCE] for e in estimates):
        return REFERENCE
    return AUTO_BATCH


def ready_for_batches(loaded, backend: str, cache_dir) -> bool:
    """Whether ``loaded`` can decode batches on ``backend`` now: an ONNX export is made once if missing (10-30 s);
    False when that fails (the caller decodes on transformers)."""
    if backend == REFERENCE:
        return True
    try:
        onnx_converted(loaded, backend.split("/", 1)[1], cache_dir)
    except Exception as exc:
        log.warning("onnx export of %s failed; batches decode on transformers: %s", loaded.spec.name, exc)
        return False
    return True


def batch_refusal(loaded, params, cache_dir) -> str | None:
    """Why ONNX batches cannot decode requests with ``params`` on ``loaded`` (None when they can)."""
    if not params.greedy or params.repetition_penalty != 1.0 or params.json_schema is not None:
        return "sampling, a repetition penalty or a JSON schema decode on transformers"
    if cache_dir is None:
        return "no model cache to export to"
    return onnx_decoder.unsupported_reason(loaded.model)


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


def onnx_converted(loaded, precision: str, cache_dir) -> onnx_decoder.OnnxDecoder:
    """The ONNX Runtime model of ``loaded``'s weights in ``precision``: exported once into the model cache (kept
    across restarts, per trained version), opened once per LoadedModel."""
    key = (ONNX, precision)
    decoder = loaded.conversions.get(key)
    if decoder is None:
        with _EXPORTING:
            decoder = loaded.conversions.get(key)
            if decoder is None:
                folder, seconds = onnx_decoder.convert(loaded, cache_dir, precision)
                decoder = onnx_decoder.OnnxDecoder(folder, precision)
                log.info(
                    "onnx: %s in %s, exported in %.1f s, opened in %.2f s",
                    loaded.spec.name,
                    precision,
                    seconds,
                    decoder.open_s,
                )
                loaded.conversions[key] = decoder
    return decoder


def onnx_ready(loaded, precision: str, cache_dir) -> tuple[onnx_decoder.OnnxDecoder | None, str | None]:
    """The ONNX model if its export exists (opened now if needed), else (None, a note): the export starts in the
    background, once per LoadedModel and precision; a failed one is not retried until the model reloads."""
    key, failed = (ONNX, precision), (ONNX, precision, "failed")
    if (decoder := loaded.conversions.get(key)) is not None:
        return decoder, None
    if failed in loaded.conversions:
        return None, f"onnx {precision} is not available for this model ({loaded.conversions[failed]}); fast path used."
    if onnx_decoder.is_converted(onnx_decoder.converted_dir(cache_dir, loaded, precision)):
        return onnx_converted(loaded, precision, cache_dir), None
    if not auto_export():
        return None, None
    with _CONVERTING:
        if (ONNX, precision, "exporting") not in loaded.conversions:
            loaded.conversions[(ONNX, precision, "exporting")] = True

            def export() -> None:
                try:
                    onnx_converted(loaded, precision, cache_dir)
                except Exception as exc:  # the fast path goes on serving; the note says why
                    log.warning("onnx export of %s failed: %s", loaded.spec.name, exc)
                    loaded.conversions[failed] = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                finally:
                    loaded.conversions.pop((ONNX, precision, "exporting"), None)

            threading.Thread(target=export, name=f"onnx-export-{loaded.spec.name}", daemon=True).start()
    return None, f"Preparing onnx {precision} for this model (a one-time export); this reply runs on the fast path."
