"""Saving a search's winner as the next version of the start template, its lineage in the version's message:
the start version, the search settings, and the dev and test scores, so the history says where it came from."""

from __future__ import annotations

from dataclasses import replace

from llmplay.errors import InvalidRequestError
from llmplay.evaluation.stats import Interval
from llmplay.templates.library import SaveResult, TemplateLibrary
from llmplay.templates.model import Template


def lineage_message(result) -> str:
    """The saved version's message: where it came from, how it was searched, and its dev and test scores."""
    p, w, metric = result.prepared, result.winner, result.metric
    c = p.config
    start_dev = result.standings[0].scores.get(w.rows)
    text = (
        f"optimized from {p.start_version.template} v{p.start_version.number} (llmplay optimize) on dataset "
        f"{p.dataset.name} with {c.model}: {w.candidate.changed}. Search: {c.settings_text()}; metric {metric}; "
        f"{len(result.standings)} candidates, {result.calls} model calls, {result.search_s:.0f} s, {result.stopped}."
    )
    if w.score is not None:
        text += f" Dev {metric} {_iv(w.score)} on {w.rows} rows"
        text += f" (start {start_dev.estimate:.3f})." if start_dev is not None else "."
    if result.test is not None:
        t = result.test
        text += (
            f" Test {metric} {t.winner.estimate:.3f} vs start {t.start.estimate:.3f} on {t.gain.n} held-out rows: "
            f"gain {t.gain.estimate:+.3f} [95% CI {t.gain.low:+.3f}, {t.gain.high:+.3f}] (paired bootstrap)."
        )
    return text


def save_winner(library: TemplateLibrary, result, author: str = "") -> SaveResult:
    """The winner as the next version of the start template, its lineage in the message."""
    if result.winner.candidate.id == 0:
        raise InvalidRequestError("The start template won the search: there is no new version to save.")
    name = result.prepared.start_version.template
    return save_version(library, name, result.winner.candidate.template, lineage_message(result), author)


def save_version(library: TemplateLibrary, name: str, template: Template, message: str, author: str = "") -> SaveResult:
    """``template`` (a candidate, saved under its scratch name) as the next version of ``name``."""
    return library.save(replace(template, name=name), message=message, author=author or "llmplay optimize")


def _iv(score: Interval) -> str:
    return f"{score.estimate:.3f} [{score.low:.3f}, {score.high:.3f}]"
