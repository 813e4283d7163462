"""A model line served by an external OpenAI-compatible engine (vLLM, llama.cpp server, SGLang, TGI's Messages API).

llmplay keeps what it owns (keys, traces, feedback, the loop's gates and aliases) and forwards the line's
requests to the engine, streaming included: ``line:NAME`` resolves to an endpoint spec at the engine's URL, so
the API, the Playground, Compare and evaluations all send that line's traffic there.

What the engine is asked for: the base model's served name while the base is active, and the active version's
adapter name (``<line>-v<N>``) once a version is. With ``lora`` on, moving the alias first loads that version's
adapter into the engine through vLLM's runtime LoRA API (``POST /v1/load_lora_adapter``; vLLM started with
``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``), so the alias moves only once the engine can
answer for the version. Without it the operator names adapters at the engine's start
(``--lora-modules fpb-v2=/path``).

Stored as JSON in ``loop_lines.serve`` (null: llmplay serves the line with its own engine).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path, PurePosixPath

import httpx

from llmplay.errors import LlmplayError, short
from llmplay.models.catalog import ModelSpec, normalize_base_url

_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
LOAD_TIMEOUT = httpx.Timeout(60.0, connect=5.0)  # vLLM reads a small adapter in seconds


class ServingError(LlmplayError):
    """The line's serving settings are wrong, or the engine refused an adapter; the message says what to do."""


@dataclass(frozen=True)
class LineServing:
    url: str  # the engine's OpenAI-compatible base URL (http://host:8000 means http://host:8000/v1)
    model: str | None = None  # the base model's name on the engine (vLLM: --served-model-name); default the line's
    lora: bool = False  # load each version's adapter (POST /v1/load_lora_adapter) before the alias moves to it
    adapter_root: str | None = None  # where the engine sees llmplay's models/versions folder, when not at our path
    key_env: str | None = None  # the environment variable holding the engine's API key, if it wants one

    @classmethod
    def from_dict(cls, data: dict) -> LineServing:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ServingError(f"Unknown serving setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))}).")
        serving = cls(**data)
        serving.validate()
        return serving

    @classmethod
    def from_json(cls, text: str | None) -> LineServing | None:
        return None if not text else cls.from_dict(json.loads(text))

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v not in (None, False)})

    def validate(self) -> None:
        p = []
        if not isinstance(self.url, str) or not re.match(r"^https?://[^\s/]+", self.url.strip()):
            p.append(f"url must be the engine's http(s) address, e.g. http://127.0.0.1:8000; not {short(self.url)}")
        if self.model is not None and not (isinstance(self.model, str) and 0 < len(self.model.strip()) <= 256):
            p.append("model must be the engine's name for the base model (1-256 characters)")
        if not isinstance(self.lora, bool):
            p.append(f"lora must be true or false, not {short(self.lora)}")
        if self.adapter_root is not None and not (
            isinstance(self.adapter_root, str) and PurePosixPath(self.adapter_root).is_absolute()
        ):
            p.append(f"adapter_root must be an absolute path on the engine's machine, not {short(self.adapter_root)}")
        if self.key_env is not None and not (isinstance(self.key_env, str) and _ENV_RE.match(self.key_env)):
            p.append(f"key_env must be an environment variable's name, not {short(self.key_env)}")
        if p:
            raise ServingError("Serving settings are not valid: " + "; ".join(p) + ".")

    @property
    def base_url(self) -> str:
        return normalize_base_url(self.url)

    def served_name(self, line: dict, version: int | None) -> str:
        """What the engine is asked for: the base model's name, or the active version's adapter name."""
        return (self.model or line["base_model"]) if version is None else adapter_name(line["name"], version)

    def spec(self, base: ModelSpec, line_name: str, served: str, description: str) -> ModelSpec:
        """The endpoint spec ``line:NAME`` resolves to: the base model's kind, at the engine's URL."""
        return replace(
            base, name=line_name, source="endpoint", location=self.base_url, api_model=served,
            api_key_env=self.key_env, adapter=None, base=base.base or base.name, gguf_file=None, hub_fallback=None,
            builtin=False, added_by="operator", description=description,
        )  # fmt: skip

    def adapter_path(self, path: str, versions_dir: Path) -> str:
        """The version folder as the engine sees it: under ``adapter_root`` when set, else our own path."""
        if not self.adapter_root:
            return str(path)
        try:
            relative = Path(path).resolve().relative_to(Path(versions_dir).resolve())
        except ValueError:
            raise ServingError(f"The adapter {path} is not under {versions_dir}; adapter_root cannot map it.") from None
        return str(PurePosixPath(self.adapter_root) / PurePosixPath(*relative.parts))


def adapter_name(line_name: str, version: int) -> str:
    """The name a line's version has on the engine (vLLM's ``lora_name``)."""
    return f"{line_name}-v{version}"


def load_adapter(serving: LineServing, name: str, path: str) -> None:
    """Ask the engine to load an adapter under ``name``; an adapter it has already is fine. Raises ServingError."""
    url = serving.base_url + "/load_lora_adapter"
    key = os.environ.get(serving.key_env) if serving.key_env else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.post(url, json={"lora_name": name, "lora_path": path}, headers=headers, timeout=LOAD_TIMEOUT)
    except httpx.HTTPError as exc:
        raise ServingError(f"The serving engine at {serving.base_url} did not answer ({type(exc).__name__}: {exc}); "
                           "the line stays on its current version.") from None  # fmt: skip
    if response.status_code == 200:
        return
    text = response.text[:500]
    if response.status_code in (400, 409) and "already" in text.lower():
        return  # loaded before (a rollback to an earlier version, or a second promotion)
    hint = (
        " Start vLLM with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True."
        if response.status_code in (404, 405)
        else ""
    )
    raise ServingError(
        f"The serving engine refused adapter {name!r} from {path} (HTTP {response.status_code}: {text}); "
        f"the line stays on its current version.{hint}"
    )
