"""A live Playground app for the whole session, served on a free loopback port, and a client for it."""

from __future__ import annotations

import shutil
import socket

import pytest

from llmplay.services import Services
from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def ui_prompts_dir(tmp_path_factory):
    """A temp copy of prompts/: the app's shipped library (only read; the tabs save to the data dir)."""
    folder = tmp_path_factory.mktemp("ui") / "prompts"
    shutil.copytree(ROOT / "prompts", folder, ignore=shutil.ignore_patterns("README.md"))
    return folder


@pytest.fixture(scope="session")
def ui_url(engine, ui_prompts_dir):
    """URL of the app built on the session engine (so the bundled model loads once per session).

    Template versions go to the session engine's temp database."""
    from llmplay.ui import build_app

    before = set(engine.catalog.names())
    demo = build_app(Services.build(engine, ui_prompts_dir))
    demo.queue().launch(prevent_thread_lock=True, server_port=free_port(), server_name="127.0.0.1", quiet=True)
    yield demo.local_url
    demo.close()
    # Models the UI tests added must not leak into other tests that share the session engine.
    for name in set(engine.catalog.names()) - before:
        engine.catalog.remove(name)


@pytest.fixture(scope="session")
def client(ui_url):
    from gradio_client import Client

    c = Client(ui_url, verbose=False)
    yield c
    c.close()
