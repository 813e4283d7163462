"""All of llmplay's settings in one dataclass, read from the environment at the edge."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

from llmplay.backend_names import check_batch_choice, check_choice, check_precision
from llmplay.errors import LlmplayError

DTYPES = ("auto", "float32", "bfloat16", "float16")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise LlmplayError(f"Environment variable {name}={raw!r} must be an integer.") from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise LlmplayError(f"Environment variable {name}={raw!r} must be a number.") from None


def _env_flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise LlmplayError(f"Environment variable {name}={raw!r} must be 1 or 0.")


_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_list(name: str, sep: str = ",") -> tuple[str, ...]:
    return tuple(part.strip() for part in os.environ.get(name, "").split(sep) if part.strip())


@dataclass(frozen=True)
class Settings:
    # Root for everything llmplay writes: SQLite file, model cache, run outputs.
    # LLMPLAY_DATA_DIR overrides it (e.g. /data on a Hugging Face Space with persistent storage).
    data_dir: Path = Path("data")
    # Converted-model cache; defaults to <data_dir>/cache/models. LLMPLAY_CACHE_DIR overrides it.
    cache_dir: Path | None = None
    # Where the app listens. Gradio's own variables win, as Spaces and Docker users expect.
    host: str = "127.0.0.1"
    port: int = 7860
    # Model picked when none is named.
    default_model: str = "smollm2-135m-instruct"
    # Weights dtype for local models. float32 by default: measured on SmolLM2 (bench/generation.py), a
    # bf16 prompt's greedy reply changes with the other prompts in its batch (28-38% of batched replies
    # matched one-at-a-time bf16; float32: 100%), so evaluations would not be reproducible. bf16 batches
    # run ~1.9x faster: "auto" picks bf16 where the CPU supports it (or on a GPU), "bfloat16" forces it.
    dtype: str = "float32"
    # How one streamed reply (Playground, Compare, Arena) decodes: "auto" = ONNX Runtime int8 where it runs the
    # model and its export is ready (exported once in the background), else the fast decoder in fast_precision,
    # else transformers; "transformers" = the reference path; "fast/<precision>", "onnx/<precision>"
    # (llmplay.backend_names). Batches (evaluation runs): batch_backend.
    backend: str = "auto"
    # float16 by default: measured by bench/generation.py (see the README's speed table).
    fast_precision: str = "float16"
    # How evaluation batches decode: "transformers" (in `dtype`) or "onnx/int8" / "onnx/w8a8" / "onnx/fp32" (greedy
    # requests as ONNX Runtime batches; each reply equals its prompt decoded alone there; BATCH_CHOICES);
    # "auto": transformers or onnx/int8, whichever is estimated to finish sooner (one for a run's auto columns).
    batch_backend: str = "auto"
    # Limits that protect a shared instance from one huge request.
    max_input_chars: int = 32_000
    max_new_tokens_limit: int = 2048
    # Prompts decoded together. On 2 CPU cores, SmolLM2 fp32: 89 tok/s at 8, 141 at 16, 165 at 32.
    max_batch_size: int = 32
    upload_max_bytes: int = 50 * 1024 * 1024
    # What one user may upload per day (uploads are kept a day): bytes and files, whatever their role. Counted
    # where uploads land (llmplay/ui/upload_quota.py); env LLMPLAY_UPLOAD_QUOTA_BYTES / LLMPLAY_UPLOAD_QUOTA_FILES.
    upload_quota_bytes: int = 200 * 1024 * 1024
    upload_quota_files: int = 50
    # Training jobs that may wait in the queue at once; a submit beyond it is refused (LLMPLAY_TRAINING_QUEUE_MAX).
    training_queue_max: int = 10
    # Training jobs that run at once; the rest wait in the queue. One: two jobs on a 2-core CPU only thrash.
    training_slots: int = 1
    # The shipped prompt-template library (YAML files), only read: the team's templates (saved, imported,
    # restored) live in templates_dir, in the data dir, and win over a shipped one of the same name.
    # LLMPLAY_PROMPTS_DIR overrides it.
    prompts_dir: Path = Path("prompts")
    # Extra models (Hub ids, local folders, endpoints) a user added; YAML list. Defaults to <data_dir>/models.yaml.
    models_file: Path | None = None
    # What models added through the web UI may use (entries the operator wrote in the models file, or added
    # with `llmplay models add`, are trusted as they are). Local folders: <data_dir>/models plus these
    # (LLMPLAY_ALLOWED_MODEL_DIRS, os.pathsep-separated). API keys: only these environment variables
    # (LLMPLAY_ALLOWED_KEY_ENVS, comma-separated), and only to URLs under these prefixes
    # (LLMPLAY_ALLOWED_ENDPOINTS, comma-separated). Empty by default: user models send no server secret.
    allowed_model_dirs: tuple[Path, ...] = ()
    allowed_key_envs: tuple[str, ...] = ()
    allowed_endpoints: tuple[str, ...] = ()
    # Whether a model may run Python code shipped with its weights (transformers' trust_remote_code). Off:
    # such code runs with the server's rights, so only the operator turns it on (LLMPLAY_TRUST_REMOTE_CODE=1),
    # and then only for models whose catalog entry asks for it.
    trust_remote_code: bool = False
    # The OpenAI-compatible API (/v1) in single-user mode answers this machine only (loopback) unless opened:
    # with no users there are no keys, so anyone who reaches the port would act as the admin.
    api_open: bool = False
    # How long a login lasts (LLMPLAY_SESSION_HOURS); removing a user or changing their role ends it sooner.
    session_hours: float = 12.0
    # API traces (llmplay/traces.py): the share of requests stored (LLMPLAY_TRACE_SAMPLE, 0 = off), regular
    # expressions whose matches are stored as [redacted] (LLMPLAY_TRACE_REDACT, separated by ";;"), and how many
    # traces are kept (LLMPLAY_TRACE_KEEP; the oldest go first).
    trace_sample: float = 1.0
    trace_redact: tuple[str, ...] = ()
    trace_keep: int = 100_000

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise LlmplayError(f"dtype must be one of {', '.join(DTYPES)}; got {self.dtype!r}.")
        object.__setattr__(self, "backend", check_choice(self.backend))
        check_precision(self.fast_precision)
        object.__setattr__(self, "batch_backend", check_batch_choice(self.batch_backend))
        positive = ("port", "max_input_chars", "max_new_tokens_limit", "max_batch_size", "upload_max_bytes")
        limits = ("upload_quota_bytes", "upload_quota_files", "training_queue_max", "trace_keep")
        for name in (*positive, *limits, "training_slots"):
            if getattr(self, name) <= 0:
                raise LlmplayError(f"Setting {name} must be positive; got {getattr(self, name)}.")
        if not 0 < self.session_hours < 24 * 366:  # also refuses nan
            raise LlmplayError(f"Setting session_hours must be between 0 and a year; got {self.session_hours}.")
        if not 0 <= self.trace_sample <= 1:  # also refuses nan
            raise LlmplayError(f"Setting trace_sample must be between 0 and 1; got {self.trace_sample}.")
        object.__setattr__(self, "trace_redact", tuple(self.trace_redact))
        for pattern in self.trace_redact:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise LlmplayError(f"trace_redact: {pattern!r} is not a regular expression ({exc}).") from None
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "prompts_dir", Path(self.prompts_dir))
        object.__setattr__(self, "allowed_model_dirs", tuple(Path(d) for d in self.allowed_model_dirs))
        object.__setattr__(self, "allowed_key_envs", tuple(self.allowed_key_envs))
        object.__setattr__(self, "allowed_endpoints", tuple(self.allowed_endpoints))
        for name in self.allowed_key_envs:
            if not _ENV_NAME_RE.match(name):
                raise LlmplayError(f"allowed_key_envs: {name!r} is not an environment variable name.")
        for url in self.allowed_endpoints:
            if not re.match(r"^https?://[^/?#]+", url):
                raise LlmplayError(f"allowed_endpoints: {url!r} must be a URL starting with http:// or https://.")
        default_paths = {"cache_dir": self.data_dir / "cache" / "models", "models_file": self.data_dir / "models.yaml"}
        for name, default in default_paths.items():
            value = getattr(self, name)
            object.__setattr__(self, name, default if value is None else Path(value))

    @property
    def db_path(self) -> Path:
        return self.data_dir / "llmplay.db"

    @property
    def templates_dir(self) -> Path:
        """The team's templates: what the app and the CLI save, in every backup (read before prompts_dir)."""
        return self.data_dir / "prompts"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def models_dir(self) -> Path:
        """Where users put local models; always allowed (see allowed_model_dirs)."""
        return self.data_dir / "models"

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        env = os.environ
        values: dict = {
            "data_dir": Path(env.get("LLMPLAY_DATA_DIR", "data")),
            "host": env.get("GRADIO_SERVER_NAME") or env.get("LLMPLAY_HOST") or cls.host,
            "port": _env_int("GRADIO_SERVER_PORT", _env_int("LLMPLAY_PORT", cls.port)),
            "default_model": env.get("LLMPLAY_DEFAULT_MODEL", cls.default_model),
            "dtype": env.get("LLMPLAY_DTYPE", cls.dtype),
            "backend": env.get("LLMPLAY_BACKEND", cls.backend),
            "fast_precision": env.get("LLMPLAY_FAST_PRECISION", cls.fast_precision),
            "batch_backend": env.get("LLMPLAY_BATCH_BACKEND", cls.batch_backend),
            "max_input_chars": _env_int("LLMPLAY_MAX_INPUT_CHARS", cls.max_input_chars),
            "max_new_tokens_limit": _env_int("LLMPLAY_MAX_NEW_TOKENS", cls.max_new_tokens_limit),
            "max_batch_size": _env_int("LLMPLAY_MAX_BATCH_SIZE", cls.max_batch_size),
            "upload_max_bytes": _env_int("LLMPLAY_UPLOAD_MAX_BYTES", cls.upload_max_bytes),
            "training_slots": _env_int("LLMPLAY_TRAINING_SLOTS", cls.training_slots),
            "upload_quota_bytes": _env_int("LLMPLAY_UPLOAD_QUOTA_BYTES", cls.upload_quota_bytes),
            "upload_quota_files": _env_int("LLMPLAY_UPLOAD_QUOTA_FILES", cls.upload_quota_files),
            "training_queue_max": _env_int("LLMPLAY_TRAINING_QUEUE_MAX", cls.training_queue_max),
        }
        if env.get("LLMPLAY_CACHE_DIR"):
            values["cache_dir"] = Path(env["LLMPLAY_CACHE_DIR"])
        if env.get("LLMPLAY_PROMPTS_DIR"):
            values["prompts_dir"] = Path(env["LLMPLAY_PROMPTS_DIR"])
        if env.get("LLMPLAY_MODELS_FILE"):
            values["models_file"] = Path(env["LLMPLAY_MODELS_FILE"])
        values["allowed_model_dirs"] = tuple(Path(d) for d in _env_list("LLMPLAY_ALLOWED_MODEL_DIRS", os.pathsep))
        values["allowed_key_envs"] = _env_list("LLMPLAY_ALLOWED_KEY_ENVS")
        values["allowed_endpoints"] = _env_list("LLMPLAY_ALLOWED_ENDPOINTS")
        values["trust_remote_code"] = _env_flag("LLMPLAY_TRUST_REMOTE_CODE")
        values["api_open"] = _env_flag("LLMPLAY_API_OPEN")
        values["session_hours"] = _env_float("LLMPLAY_SESSION_HOURS", cls.session_hours)
        values["trace_sample"] = _env_float("LLMPLAY_TRACE_SAMPLE", cls.trace_sample)
        values["trace_redact"] = _env_list("LLMPLAY_TRACE_REDACT", ";;")
        values["trace_keep"] = _env_int("LLMPLAY_TRACE_KEEP", cls.trace_keep)
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise LlmplayError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.cache_dir, self.runs_dir):
            path.mkdir(parents=True, exist_ok=True)
