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
