"""An endpoint nothing listens on, for the tests of a column that cannot reach its model."""

from __future__ import annotations

import socket

import pytest

from llmplay.models.catalog import ModelSpec


@pytest.fixture()
def dead_endpoint(engine):
    with socket.socket() as sock:  # a port nothing listens on once the socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = ModelSpec(
        name="compare-dead-endpoint", kind="chat", source="endpoint", location=f"http://127.0.0.1:{port}/v1"
    )
    engine.catalog.add(spec, persist=False)
    yield spec.name
    engine.catalog.remove(spec.name)
