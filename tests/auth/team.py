"""A real llmplay server with users, for the role tests (HTTP, gradio_client, browser).

Started with ``launch(prevent_thread_lock=True)`` on a free port and a temp data dir; the default model is
set to a name that is not in the catalog, so nothing loads (no test here generates)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from llmplay.auth.users import add_user
from llmplay.settings import Settings

PASSWORDS = {"ada": "ada-password", "lab": "lab-password", "vic": "vic-password"}
ROLES = {"ada": "admin", "lab": "labeler", "vic": "viewer"}
QUEUE = "team-queue"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Team:
    url: str
    settings: Settings
    served: object

    def auth(self, name: str) -> tuple[str, str]:
        return name, PASSWORDS[name]


def make_settings(data_dir: Path, cache_dir: Path | None = None) -> Settings:
    return Settings(data_dir=data_dir, cache_dir=cache_dir, default_model="no-such-model-in-tests")


def add_team(settings: Settings) -> None:
    for name, role in ROLES.items():
        add_user(settings, name, role, PASSWORDS[name])


def add_queue(settings: Settings, items: int = 3) -> list[int]:
    """A label queue with a few items; returns their ids."""
    from llmplay.feedback import store as fb
    from llmplay.store import connect, immediate

    with connect(settings.db_path) as db, immediate(db):
        fb.create_queue(db, QUEUE, task="label", labels=["good", "bad"], k=3)
        return [
            fb.add_item(db, QUEUE, prompt=f"prompt {i}", output=f"output {i}", source="cli")[0].id for i in range(items)
        ]


def start(settings: Settings, prompts_dir: Path | None = None) -> Team:
    from llmplay.engine import Engine
    from llmplay.ui.app import launch

    engine = Engine(settings)
    port = free_port()
    served = launch(engine, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    return Team(served.local_url, settings, served)
