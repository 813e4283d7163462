"""Hugging Face OAuth on Spaces: the Hub user name comes from the login, the role from allow-lists.

LLMPLAY_AUTH=oauth turns it on; LLMPLAY_ADMINS / LLMPLAY_LABELERS / LLMPLAY_VIEWERS are comma-separated Hub
user names (Space secrets or variables). Anyone else is refused, or is a viewer with
LLMPLAY_OAUTH_DEFAULT_ROLE=viewer. Names compare case-insensitively, as the Hub treats them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from llmplay.auth.roles import ROLES
from llmplay.errors import LlmplayError


def _names(raw: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class OAuthConfig:
    admins: frozenset[str] = frozenset()
    labelers: frozenset[str] = frozenset()
    viewers: frozenset[str] = frozenset()
    default_role: str | None = None  # None: users on no list are refused

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OAuthConfig | None:
        """The config when LLMPLAY_AUTH=oauth, else None."""
        env = os.environ if env is None else env
        mode = env.get("LLMPLAY_AUTH", "").strip().lower()
        if mode in ("", "password", "local"):
            return None
        if mode != "oauth":
            raise LlmplayError(f"LLMPLAY_AUTH={mode!r}: use 'oauth' (Hugging Face login) or leave it unset.")
        default = env.get("LLMPLAY_OAUTH_DEFAULT_ROLE", "").strip().lower() or None
        if default not in (None, "viewer"):
            raise LlmplayError("LLMPLAY_OAUTH_DEFAULT_ROLE may only be 'viewer' (or unset: refuse unlisted users).")
        return cls(
            admins=_names(env.get("LLMPLAY_ADMINS", "")),
            labelers=_names(env.get("LLMPLAY_LABELERS", "")),
            viewers=_names(env.get("LLMPLAY_VIEWERS", "")),
            default_role=default,
        )

    def role_for(self, hub_user: str | None) -> str | None:
        """The highest role whose list names ``hub_user``; the default role (or None) for anyone else."""
        if not hub_user or not hub_user.strip():
            return None
        name = hub_user.strip().lower()
        for role, names in zip(reversed(ROLES), (self.admins, self.labelers, self.viewers)):
            if name in names:
                return role
        return self.default_role
