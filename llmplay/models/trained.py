"""Trained versions as catalog models: a picker label (``model_versions``, see models/registry.py) resolves
to a ModelSpec the engine loads like any other.

- An adapter version (``"smollm2-135m-instruct + fpb-lora v2"``) is its base model's spec under the label,
  with ``adapter`` set to the version's folder (applied on load, merged for LoRA-family adapters) and ``base``
  naming the catalog model whose converted weights it shares.
- A fine-tuned encoder (``"fpb-cls v1"``, kind classifier or tagger) is a local model of that kind at its
  folder.

Read from SQLite on each lookup, so a version appears the moment a job registers it and is gone once deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from llmplay.errors import LlmplayError, UnknownModelError
from llmplay.models import lines, registry
from llmplay.models.catalog import ModelSpec
from llmplay.models.line_serving import LineServing
from llmplay.models.registry import ModelVersion
from llmplay.store import connect

log = logging.getLogger(__name__)

Lookup = Callable[[str], ModelSpec]  # a catalog name -> its spec (raises UnknownModelError)


def version_spec(version: ModelVersion, lookup: Lookup) -> ModelSpec:
    """The spec a version loads as; raises UnknownModelError when its base model left the catalog."""
    when = (version.created_at or "")[:16].replace("T", " ")
    if version.kind == "adapter":
        try:
            base = lookup(version.base_model)
        except UnknownModelError:
            raise UnknownModelError(
                f"{version.label!r} is an adapter for {version.base_model!r}, which is no longer in the catalog; "
                f"add {version.base_model!r} back to use it."
            ) from None
        description = f"{version.method or 'adapter'} adapter on {base.name} (trained {when}, job #{version.job_id})"
        return replace(
            base, name=version.label, adapter=version.path, base=base.name, builtin=False, description=description
        )
    return ModelSpec(
        name=version.label,
        kind=version.kind,
        source="local",
        location=version.path,
        base=version.base_model,
        description=f"{version.task or version.kind} model fine-tuned from {version.base_model} (trained {when})",
    )


def find_spec(db_path: Path | None, label: str, lookup: Lookup) -> ModelSpec | None:
    """The spec for a live version named ``label``, or None when no version has that label."""
    if db_path is None:
        return None
    version = registry.find(db_path, label)
    return None if version is None else version_spec(version, lookup)


def version_specs(db_path: Path | None, lookup: Lookup) -> list[ModelSpec]:
    """Specs of every live version whose base is still in the catalog, newest version of each name first."""
    if db_path is None:
        return []
    specs = []
    versions = registry.list_versions(db_path)
    for version in sorted(versions, key=lambda v: (v.name, -v.version)):
        try:
            specs.append(version_spec(version, lookup))
        except LlmplayError as exc:  # a missing base or an unknown kind hides the version, with a note
            log.info("Not offering %s: %s", version.label, exc)
    return specs


def line_active(db_path: Path | None, name: str) -> str | None:
    """``line:<name>``: the catalog name of what the line serves now (its active version's label, or its base
    model while none is active); None for no such line."""
    if db_path is None or not name.startswith(lines.LINE_PREFIX) or not Path(db_path).exists():
        return None
    with connect(db_path) as db:
        line = lines.find_line(db, name)
        return None if line is None else lines.active_label(db, line["base_model"], line["active_version_id"])


def line_spec(db_path: Path | None, name: str, lookup: Lookup) -> ModelSpec | None:
    """``line:<name>``: the spec of the line's active version (the base model while none is active); for a line
    served by an external engine (models/line_serving.py), an endpoint spec asking the engine for it."""
    if db_path is None or not name.startswith(lines.LINE_PREFIX) or not Path(db_path).exists():
        return None
    with connect(db_path) as db:
        line = lines.find_line(db, name)
        if line is None:
            return None
        active = lines.active_label(db, line["base_model"], line["active_version_id"])
        serving = LineServing.from_json(line.get("serve"))
        version = None
        if serving is not None and line["active_version_id"] is not None:
            version = db.execute("select version from model_versions where id = ?", [line["active_version_id"]])
            version = version.fetchone()[0]
    description = f"model line {line['name']}: active = {active}"
    if serving is not None:
        served = serving.served_name(line, version)
        return serving.spec(lookup(line["base_model"]), name, served, f"{description}, served by {serving.base_url}")
    spec = lookup(active)
    return replace(spec, name=name, base=spec.base or spec.name, builtin=False, description=description)


def line_specs(db_path: Path | None, lookup: Lookup) -> list[ModelSpec]:
    """One spec per model line, named ``line:<name>``, serving its active version."""
    if db_path is None or not Path(db_path).exists():
        return []
    with connect(db_path) as db:
        names = [lines.LINE_PREFIX + row["name"] for row in lines.line_rows(db)]
    specs = []
    for name in names:
        try:
            spec = line_spec(db_path, name, lookup)
        except LlmplayError as exc:
            log.info("Not offering %s: %s", name, exc)
            continue
        if spec is not None:
            specs.append(spec)
    return specs
