"""Migrations of the team's users (llmplay/auth/)."""

from __future__ import annotations

from sqlite_utils import Database


def m009_users(db: Database) -> None:
    # Teams (llmplay/auth/): who may log in, with which role; no rows = single-user mode.
    db["users"].create(
        {
            "name": str,  # login name (safe name)
            "role": str,  # viewer | labeler | admin (llmplay/auth/roles.py)
            "password_hash": str,  # argon2id, never the password
            "created_at": str,
            "updated_at": str,
        },
        pk="name",
        not_null={"role", "password_hash", "created_at", "updated_at"},
    )
    # Refused attempts and every admin action; no foreign key: a removed user's rows stay.
    db["audit_log"].create(
        {
            "id": int,
            "at": str,
            "user": str,
            "role": str,
            "action": str,
            "target": str,
            "allowed": int,  # 1 = done, 0 = refused
            "detail": str,
        },
        pk="id",
        not_null={"at", "action", "allowed"},
    )
    db["audit_log"].create_index(["at"])


def m013_api_keys(db: Database) -> None:
    # API keys (llmplay/auth/keys.py): a key acts as its user with the user's current role; only a digest is kept.
    db["api_keys"].create(
        {
            "id": int,
            "user": str,  # users.name (no foreign key: a removed user's keys stop working, the rows stay)
            "prefix": str,  # the key's first characters, shown in listings to tell keys apart
            "digest": str,  # sha256 of the whole key (keys are random, 32 bytes: no slow hash needed)
            "created_at": str,
            "revoked_at": str,  # null while the key works
            "last_used_at": str,
        },
        pk="id",
        not_null={"user", "prefix", "digest", "created_at"},
    )
    db["api_keys"].create_index(["digest"], unique=True)
    db["api_keys"].create_index(["user"])
