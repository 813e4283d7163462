"""Shared fixtures. Real bundled models are loaded once per test session and reused.

The converted-model cache lives in .cache/test-models (git-ignored) so repeated local runs skip the
one-time GGUF conversion; CI starts from a fresh clone and converts once per run.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no Hub at test time: fail fast instead of retrying
# Apps that tests build share the session's data dir with the loop tests' lines: no background loop updates or
# online scoring there (they trained and evaluated during browser tests). Tests of those threads set their own.
os.environ.setdefault("LLMPLAY_LOOP_CHECK_S", "0")
os.environ.setdefault("LLMPLAY_ONLINE_EVAL_S", "0")
# "auto" streams use ONNX Runtime only where the export already exists (the session's bundled models, exported
# once below): a background export must not switch a test's backend halfway, nor take the cores from other tests.
os.environ.setdefault("LLMPLAY_ONNX_AUTO_EXPORT", "0")
# Gradio's upload cache of its own per test session: with the shared /tmp/gradio, a file uploaded by an earlier
# run (same content, same hashed path) was refused as "not uploaded by a user" (test_templates_tab's import).
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="llmplay-tests-gradio-"))

from llmplay import openmp  # noqa: E402
from llmplay.engine import Engine  # noqa: E402
from llmplay.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
CHAT_MODEL = "smollm2-135m-instruct"
BASE_MODEL = "gemma-3-270m"
PARIS_QUESTION = "What is the capital of France? Answer in one word."
pytest_plugins = ["tests.servers"]  # the katan and scripted OpenAI-compatible servers


@pytest.fixture(scope="session")
def model_cache_dir() -> Path:
    path = Path(os.environ.get("LLMPLAY_TEST_CACHE", ROOT / ".cache" / "test-models"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def session_settings(tmp_path_factory, model_cache_dir) -> Settings:
    data = tmp_path_factory.mktemp("llmplay-data")
    return Settings(data_dir=data, cache_dir=model_cache_dir)


@pytest.fixture(scope="session")
def engine(session_settings) -> Engine:
    """One engine (and so one copy of each model) for the whole test session; the bundled models' ONNX exports
    made (once per cache) before the first test uses it, so "auto" streams decode on one backend all session."""
    eng = Engine(session_settings)
    _export_bundled(eng)
    _SESSION.append(eng)
    yield eng
    _SESSION.clear()
    eng.close()


_SESSION: list[Engine] = []  # the session engine once a test asked for it


def _export_bundled(eng: Engine) -> None:
    from llmplay.engine import backends, onnx_decoder

    if onnx_decoder.unavailable_reason():
        return
    for name in (CHAT_MODEL, BASE_MODEL):
        backends.onnx_converted(eng.models.get(eng.catalog.get(name)), backends.AUTO_ONNX, eng.settings.cache_dir)


def _malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@pytest.fixture(autouse=True)
def _give_back_openmp_workers():
    """Tests that run torch themselves (a model loaded or called in the test) leave the main thread an OpenMP worker
    pool; kept alive, it would count against torch work in every other thread (an evaluation run, a request) for
    the rest of the session: libgomp's workers sleep between ops once there are more of them than cores
    (llmplay/openmp.py, bench/openmp_threads.py)."""
    yield
    openmp.give_back()


@pytest.fixture(scope="module", autouse=True)
def _release_memory_after_module():
    """Keep the session's memory flat: each trained version a module loaded into the session engine is a merged
    copy of its base (SmolLM2 with its fast-decoder copy: 1.1 GB), so it goes with the module, as do fast-decoder
    copies in other than the default precision; and glibc keeps freed weights and activations in its heap unless
    asked to hand them back."""
    yield
    release_session_memory()


def release_session_memory() -> None:
    """Trained versions and non-default conversions out of the session engine, freed memory back to the system.
    A module whose tests each load their own (tests/engine/test_onnx_backend.py) calls it after each test."""
    for eng in _SESSION:
        eng.models.unload_adapters()
        # A fast-decoder copy in a precision other than the default is what one module compares; the next
        # converts it again if it needs it (Gemma's float32 + bfloat16 copies alone are 1.6 GB).
        defaults = {("fast", eng.settings.fast_precision), ("onnx", "int8")}
        eng.models.drop_conversions(lambda key, defaults=defaults: key in defaults)
    gc.collect()
    _malloc_trim()


@pytest.fixture()
def settings(tmp_path, model_cache_dir) -> Settings:
    """A fresh data dir per test, sharing the converted-model cache."""
    return Settings(data_dir=tmp_path / "data", cache_dir=model_cache_dir)


@pytest.fixture()
def isolated_engine(settings, engine) -> Engine:
    """An engine on this test's fresh data dir (``settings``) that reuses the session engine's catalog models:
    one copy of their weights per session. What it loads itself (trained versions, encoders) goes with the test.
    Build an ``Engine(...)`` of a test's own only to test loading itself."""
    eng = Engine(settings, shared_models=engine.models)
    yield eng
    eng.close()
