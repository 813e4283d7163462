"""Migrations of the prompt-template library's tables (llmplay/templates/)."""

from __future__ import annotations

from sqlite_utils import Database


def m001_template_versions(db: Database) -> None:
    db["template_versions"].create(
        {
            "id": int,
            "template": str,  # template name (= file name in prompts/ without .yaml)
            "number": int,  # 1, 2, ... per template
            "content": str,  # the whole YAML file
            "content_hash": str,  # sha256 of content
            "created_at": str,  # ISO 8601, UTC
            "author": str,
            "message": str,
        },
        pk="id",
        not_null={"template", "number", "content", "content_hash", "created_at"},
    )
    db["template_versions"].create_index(["template", "number"], unique=True)
