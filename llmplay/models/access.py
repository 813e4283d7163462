"""What a model added through the web UI may reach: which local folders, which API keys, which URLs.

The operator's own entries (the models file written by hand, or ``llmplay models add`` on the server) are
trusted as written. Entries a user adds in the UI carry ``added_by: user`` and are checked here: when
added, whenever the models file is read, and (for API keys) again before every request, so that no
user-typed path or URL can reach a server file or an environment variable the operator did not allow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from llmplay.models.catalog import ModelSpec
    from llmplay.settings import Settings

# Sent when a model names no key variable (operator models only). See openai_compat.
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


@dataclass(frozen=True)
class Access:
    model_dirs: tuple[Path, ...] = ()
    key_envs: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    remote_code: bool = False  # the operator's LLMPLAY_TRUST_REMOTE_CODE

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        # The converted-model cache holds models too (a `models prepare` result is a loadable folder).
        dirs = (settings.models_dir, settings.cache_dir, *settings.allowed_model_dirs)
        return cls(dirs, settings.allowed_key_envs, settings.allowed_endpoints, settings.trust_remote_code)

    def refusal(self, spec: ModelSpec, *, confine: bool = False) -> str | None:
        """Why ``spec`` may not be added (None when it may). Operator entries may reach any local folder
        unless ``confine``; only remote code is refused for them (unless the operator allowed it)."""
        refused = self.remote_code_refusal(spec)
        if refused:
            return refused
        if spec.added_by != "user" and not (confine and spec.source == "local"):
            return None
        if spec.source == "local":
            return self._local_refusal(spec)
        if spec.source == "endpoint":
            return self.key_refusal(spec)
        return None

    def remote_code_refusal(self, spec: ModelSpec) -> str | None:
        """Why ``spec`` may not run the Python code shipped with its weights (None: it does not ask to, or may)."""
        if not spec.trust_remote_code or (self.remote_code and spec.added_by != "user"):
            return None
        return (
            f"Model {spec.name!r} asks for trust_remote_code, which runs Python code from its files with this "
            "server's rights; it is off. Only the operator can allow it, by setting LLMPLAY_TRUST_REMOTE_CODE=1"
            + (" (and models added in the web UI never may)." if spec.added_by == "user" else ".")
        )

    def _local_refusal(self, spec: ModelSpec) -> str | None:
        paths = [spec.location] + ([os.path.join(spec.location, spec.gguf_file)] if spec.gguf_file else [])
        # Checked before existence, with one message for every outside path: the reply must not tell
        # whether /etc/passwd exists.
        if all(self._inside(p) for p in paths):
            return None
        where = ", ".join(str(d) for d in self.model_dirs) or "none configured"
        return (
            f"Local models must be inside an allowed folder ({where}); {spec.location!r} is not. "
            "The operator can allow more folders with LLMPLAY_ALLOWED_MODEL_DIRS."
        )

    def _inside(self, path: str) -> bool:
        real = Path(os.path.realpath(os.path.expanduser(path)))  # follows symlinks and '..'
        return any(real.is_relative_to(os.path.realpath(d)) for d in self.model_dirs)

    def key_env(self, spec: ModelSpec) -> str | None:
        """The variable whose value goes out as the API key; None: send no key."""
        if spec.added_by == "user":
            return spec.api_key_env  # no default for users: OPENAI_API_KEY is not theirs to send anywhere
        return spec.api_key_env or DEFAULT_API_KEY_ENV

    def key_refusal(self, spec: ModelSpec) -> str | None:
        """Why ``spec``'s API key variable may not be sent to its URL (None when it may)."""
        name = self.key_env(spec)
        if spec.added_by != "user" or name is None:
            return None
        if name not in self.key_envs:
            allowed = ", ".join(self.key_envs) or "none"
            return (
                f"The API key variable ${name} is not allowed for models added here (allowed: {allowed}). "
                "Leave the key field empty, or ask the operator to add it to LLMPLAY_ALLOWED_KEY_ENVS."
            )
        if not any(endpoint_matches(spec.location, prefix) for prefix in self.endpoints):
            allowed = ", ".join(self.endpoints) or "none"
            return (
                f"The API key in ${name} may only go to approved endpoints (allowed: {allowed}); "
                f"{spec.location} is not one. The operator approves URLs with LLMPLAY_ALLOWED_ENDPOINTS."
            )
        return None


def endpoint_matches(url: str, prefix: str) -> bool:
    """Same scheme, host and port, and the path at or below the prefix's (by segments, not characters,
    so ``http://h:80`` does not approve ``http://h:8000`` and ``/v1`` does not approve ``/v1-evil``)."""
    try:
        u, p = urlsplit(url.strip()), urlsplit(prefix.strip())
        same_origin = (u.scheme, u.hostname, _port(u)) == (p.scheme, p.hostname, _port(p))
    except ValueError:  # a malformed port
        return False
    base, path = p.path.rstrip("/"), u.path.rstrip("/")
    return same_origin and u.hostname is not None and (path == base or path.startswith(base + "/"))


def _port(parts) -> int | None:
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
