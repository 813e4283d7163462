"""The converted-model cache: fast second load, damaged entries detected and rebuilt, no half-written entry."""

from __future__ import annotations

import json
import shutil

import pytest

from llmplay.errors import ModelLoadError
from llmplay.models import cache
from llmplay.models.loader import ModelManager
from llmplay.models.sources import Weights
from llmplay.settings import Settings
from tests.conftest import CHAT_MODEL


@pytest.fixture(scope="module")
def smol_entry(engine):
    spec = engine.catalog.get(CHAT_MODEL)
    engine.models.get(spec)  # converts once if the cache is empty
    entry = engine.models.cache_entry(spec)
    assert cache.is_valid(entry)
    return entry


def test_second_load_reads_the_cache_and_is_fast(engine, smol_entry, tmp_path, monkeypatch):
    def no_conversion(*args):
        raise AssertionError("a warm load must not convert the GGUF again")

    monkeypatch.setattr(cache, "convert_gguf", no_conversion)
    manager = ModelManager(Settings(data_dir=tmp_path, cache_dir=smol_entry.parent))
    loaded = manager.get(engine.catalog.get(CHAT_MODEL))
    assert loaded.from_cache is True
    assert loaded.folder == str(smol_entry)
    # Loose bound (a busy CI box); bench/generation.py measures the real figure (well under 2 s).
    assert loaded.load_s < 10.0, f"warm load took {loaded.load_s:.2f} s"
    assert manager.get(engine.catalog.get(CHAT_MODEL)) is loaded  # once per process


def _copy(entry, root):
    root.mkdir()
    shutil.copytree(entry, root / entry.name)
    return root / entry.name


@pytest.mark.parametrize(
    "damage",
    ["truncate_weights", "drop_manifest", "garbage_header", "missing_tokenizer", "bad_manifest_json"],
)
def test_damaged_entries_are_detected(smol_entry, tmp_path, damage):
    entry = _copy(smol_entry, tmp_path / "cache")
    weights = entry / "model.safetensors"
    if damage == "truncate_weights":
        with weights.open("r+b") as fh:
            fh.truncate(weights.stat().st_size // 2)
    elif damage == "drop_manifest":  # what an interrupted build would leave
        (entry / cache.MANIFEST).unlink()
    elif damage == "garbage_header":
        size = weights.stat().st_size
        with weights.open("r+b") as fh:
            fh.write(b"\xff" * 64)
        assert weights.stat().st_size == size
    elif damage == "missing_tokenizer":
        (entry / "tokenizer.json").unlink()
    elif damage == "bad_manifest_json":
        (entry / cache.MANIFEST).write_text("{not json")
    assert not cache.is_valid(entry)


def test_damaged_entry_is_rebuilt_on_load(engine, smol_entry, tmp_path):
    entry = _copy(smol_entry, tmp_path / "cache")
    with (entry / "model.safetensors").open("r+b") as fh:
        fh.truncate(1000)
    manager = ModelManager(Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache"))
    stages: list[str] = []
    loaded = manager.get(engine.catalog.get(CHAT_MODEL), progress=stages.append)
    assert loaded.from_cache is False
    assert any("damaged" in s for s in stages)
    assert cache.is_valid(entry)
    manifest = json.loads((entry / cache.MANIFEST).read_text())
    assert manifest["files"]["model.safetensors"] == (smol_entry / "model.safetensors").stat().st_size
    tok = loaded.tokenizer
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert text.startswith("<|im_start|>") and len(tok(text)["input_ids"]) > 3


def test_failed_conversion_leaves_nothing_behind(tmp_path):
    def explode(weights, out_dir, progress):
        (out_dir / "config.json").write_text("{}")
        (out_dir / "model.safetensors").write_bytes(b"partial")
        raise RuntimeError("killed mid-write")

    weights = Weights(str(tmp_path), gguf_file="x.gguf")
    with pytest.raises(ModelLoadError, match="killed mid-write"):
        cache.ensure_converted(weights, tmp_path / "cache", "m-1", convert=explode)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".m-1.lock"]


def test_leftover_temp_folder_from_a_killed_process_is_ignored(tmp_path):
    root = tmp_path / "cache"
    (root / ".m-1.tmp-99999").mkdir(parents=True)  # a killed converter's leftovers
    calls = []

    def fake_convert(weights, out_dir, progress):
        calls.append(out_dir)
        (out_dir / "config.json").write_text("{}")

    entry, was_cached = cache.ensure_converted(Weights("x", gguf_file="x.gguf"), root, "m-1", convert=fake_convert)
    assert not was_cached and cache.is_valid(entry)
    entry2, was_cached2 = cache.ensure_converted(Weights("x", gguf_file="x.gguf"), root, "m-1", convert=fake_convert)
    assert was_cached2 and entry2 == entry and len(calls) == 1


def test_bundled_cache_key_does_not_depend_on_where_the_cache_lives(engine, tmp_path):
    spec = engine.catalog.get("gemma-3-270m")
    a = ModelManager(Settings(data_dir=tmp_path, cache_dir=tmp_path / "a")).cache_entry(spec)
    b = ModelManager(Settings(data_dir=tmp_path, cache_dir=tmp_path / "b" / "c")).cache_entry(spec)
    assert a.name == b.name
