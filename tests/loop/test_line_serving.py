"""A line served by an external engine: its settings, what ``line:NAME`` resolves to, and the adapter loading that
promotion and rollback wait for (a real SQLite file; no model loaded).

vLLM itself cannot run on this machine (no GPU, and its CPU build compiles for an hour), so the adapter-loading
calls go to the scripted HTTP server (tests/servers.py) speaking vLLM's documented ``/v1/load_lora_adapter``;
the forwarding of requests is tested against a real server in tests/api/test_line_forwarding.py.
"""

from __future__ import annotations

import json

import pytest

from llmplay.loop import lines
from llmplay.loop.update import promote_candidate
from llmplay.models import registry
from llmplay.models.catalog import Catalog
from llmplay.models.line_serving import LineServing, ServingError
from llmplay.settings import Settings
from llmplay.store import connect
from llmplay.ui.tabs.loop.view import status_markdown

BASE = "smollm2-135m-instruct"


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")


def version(settings, n_files: int = 1) -> registry.ModelVersion:
    """A registered adapter version of line 'fpb' (its folder under <data>/models/versions, as a job's is)."""
    folder = registry.versions_dir(settings.data_dir) / "fpb" / f"job-{n_files}"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 4, "n": n_files}))
    return registry.register(settings.db_path, name="fpb", base_model=BASE, kind="adapter", path=folder)


def loads(server) -> list[dict]:
    return [body for _, path, _, body in server.seen if path.endswith("/load_lora_adapter")]


def test_serving_settings_are_checked_with_every_problem_named():
    with pytest.raises(ServingError) as exc:
        LineServing.from_dict({"url": "ftp://x", "lora": "yes", "adapter_root": "rel/path", "key_env": "A B"})
    message = str(exc.value)
    assert all(word in message for word in ("url", "lora", "adapter_root", "key_env")), message
    with pytest.raises(ServingError, match="Unknown serving setting"):
        LineServing.from_dict({"url": "http://h:8000", "port": 1})
    serving = LineServing.from_dict({"url": "http://h:8000", "model": "Qwen/Qwen3-0.6B", "lora": True})
    assert serving.base_url == "http://h:8000/v1"
    assert LineServing.from_json(serving.to_json()) == serving


def test_a_served_line_resolves_to_the_engine_and_asks_it_for_the_active_versions_adapter(settings, scripted):
    server = scripted((200, "Success: LoRA adapter 'fpb-v1' added successfully.", {}))
    catalog = Catalog(settings=settings, db_path=settings.db_path)
    with connect(settings.db_path) as db:
        lines.create_line(db, "fpb", BASE, "financial-sentiment")
        first = version(settings)
        serving = LineServing(url=server.url, model="smol-on-vllm", lora=True, key_env="FPB_ENGINE_KEY")
        lines.set_serving(db, "fpb", serving, user="ada")
        spec = catalog.get("line:fpb")
        assert (spec.source, spec.location, spec.api_model, spec.kind) == (
            "endpoint",
            server.url,
            "smol-on-vllm",
            "chat",
        )
        assert spec.api_key_env == "FPB_ENGINE_KEY" and spec.adapter is None
        assert loads(server) == []  # the base is active: nothing to load

        lines.set_active(db, "fpb", first.id, user="gates", action="promote")
        assert loads(server) == [{"lora_name": "fpb-v1", "lora_path": first.path}]
        assert catalog.get("line:fpb").api_model == "fpb-v1"
        assert [e["action"] for e in lines.events(db, "fpb")][:2] == ["promote", "serving"]
        status = status_markdown(lines.get_line(db, "fpb"), {first.id: first.label}, "50 rows", None)
        assert f"**Served by:** {server.url} (loads adapters)" in status  # the Loop tab says where it answers


def test_the_alias_stays_when_the_engine_refuses_the_adapter(settings, scripted):
    server = scripted((500, {"error": {"message": "CUDA out of memory"}}, {}))
    with connect(settings.db_path) as db:
        lines.create_line(db, "fpb", BASE, "financial-sentiment")
        v1 = version(settings)
        lines.set_serving(db, "fpb", LineServing(url=server.url, lora=True), user="ada")
        with pytest.raises(ServingError, match="CUDA out of memory.*stays on its current version"):
            lines.set_active(db, "fpb", v1.id, user="gates", action="promote")
        line = lines.get_line(db, "fpb")
        assert line.active_version_id is None  # still the base
        assert "promote" not in [e["action"] for e in lines.events(db, "fpb")]


def test_a_rollback_to_an_adapter_the_engine_has_already_is_fine_and_paths_map_to_the_engines_volume(
    settings, scripted
):
    already = (400, {"object": "error", "message": "The lora adapter 'fpb-v1' has already been loaded."}, {})
    server = scripted((200, "ok", {}), (200, "ok", {}), already)
    with connect(settings.db_path) as db:
        lines.create_line(db, "fpb", BASE, "financial-sentiment")
        v1, v2 = version(settings, 1), version(settings, 2)
        serving = LineServing(url=server.url, lora=True, adapter_root="/mnt/llmplay-versions")
        lines.set_serving(db, "fpb", serving, user="ada")
        lines.set_active(db, "fpb", v1.id, user="gates", action="promote")
        lines.set_active(db, "fpb", v2.id, user="gates", action="promote")
        lines.rollback(db, "fpb", user="ada")
        assert lines.get_line(db, "fpb").active_version_id == v1.id
    paths = [body["lora_path"] for body in loads(server)]
    assert paths == [
        "/mnt/llmplay-versions/fpb/job-1",
        "/mnt/llmplay-versions/fpb/job-2",
        "/mnt/llmplay-versions/fpb/job-1",
    ]


def test_a_hand_promotion_loads_the_candidate_before_it_takes_the_write_lock(settings, scripted):
    server = scripted((404, "Not Found", {}))  # an engine without runtime LoRA loading
    with connect(settings.db_path) as db:
        line = lines.create_line(db, "fpb", BASE, "financial-sentiment")
        v1 = version(settings)
        lines.set_serving(db, "fpb", LineServing(url=server.url, lora=True), user="ada")
        update_id = (
            db["loop_updates"]
            .insert(
                {
                    "line_id": line.id,
                    "status": "rejected",
                    "started_at": "2026-12-06T00:00:00",
                    "candidate_version_id": v1.id,
                }
            )
            .last_pk
        )
        with pytest.raises(ServingError, match="--enable-lora"):
            promote_candidate(db, update_id, user="ada")
        assert db["loop_updates"].get(update_id)["status"] == "rejected"
        assert lines.get_line(db, "fpb").active_version_id is None


def test_the_cli_serves_a_line_from_an_engine_and_back(settings, scripted, capsys):
    from llmplay.cli import main

    server = scripted()
    env = ["--data-dir", str(settings.data_dir)]
    with connect(settings.db_path) as db:
        lines.create_line(db, "fpb", BASE, "financial-sentiment")
    assert main([*env, "loop", "serve", "fpb", "--url", server.url, "--model", "smol"]) == 0
    assert "line:fpb goes there" in capsys.readouterr().out
    with connect(settings.db_path) as db:
        assert lines.get_line(db, "fpb").serving == LineServing(url=server.url, model="smol")
    assert main([*env, "loop", "serve", "fpb"]) == 2  # neither --url nor --off
    assert "--url URL" in capsys.readouterr().err
    assert main([*env, "loop", "serve", "fpb", "--url", "nope"]) == 2
    assert main([*env, "loop", "serve", "fpb", "--off"]) == 0
    with connect(settings.db_path) as db:
        assert lines.get_line(db, "fpb").serving is None
