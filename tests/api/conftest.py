"""A real llmplay server with users and a model line, for the OpenAI-compatible API tests (uvicorn on a free port,
a temp data dir, the session's loaded weights)."""

from __future__ import annotations

import pytest

from llmplay.engine import Engine
from llmplay.loop.lines import create_line
from llmplay.settings import Settings
from llmplay.store import connect
from tests.auth.team import add_team, free_port
from tests.conftest import CHAT_MODEL


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory, model_cache_dir, request):
    from llmplay.ui.app import launch

    # A module may name the stream backend its server decodes on (SERVER_BACKEND; default: the settings' auto).
    backend = getattr(request.module, "SERVER_BACKEND", "auto")
    settings = Settings(data_dir=tmp_path_factory.mktemp("api") / "data", cache_dir=model_cache_dir, backend=backend)
    add_team(settings)  # ada (admin), lab (labeler), vic (viewer): keys are needed
    with connect(settings.db_path) as db:
        create_line(db, "capitals", CHAT_MODEL, "financial-sentiment")
    api_engine = Engine(settings, shared_models=engine.models)  # the session's weights, this test's data dir
    served = launch(api_engine, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    yield served.local_url.rstrip("/"), settings, api_engine
    served.close()
    api_engine.close()
