"""What a user does with a version: delete (refused while in use), zip, merge into the base, held-out rows."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from llmplay.datasets import ColumnMapping, load_dataset, save_dataset
from llmplay.models import registry
from llmplay.store import connect
from llmplay.training import manage, records
from llmplay.training.manage import VersionError
from tests.conftest import CHAT_MODEL


def version_folder(settings, name: str = "fpb-lora", job: int = 1) -> Path:
    folder = registry.versions_dir(settings.data_dir) / name / f"job-{job}"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    return folder


def register(settings, folder: Path, **extra):
    values = {"name": "fpb-lora", "base_model": CHAT_MODEL, "kind": "adapter", "method": "lora"} | extra
    return registry.register(settings.db_path, path=folder, **values)


def test_delete_is_refused_while_a_job_or_a_run_uses_the_version(settings):
    version = register(settings, version_folder(settings))
    job = records.create_job(
        settings.db_path, {"name": "next", "base_model": CHAT_MODEL, "parent_version": version.label}
    )
    with pytest.raises(VersionError, match=f"training job #{job.id} \\(queued\\) continues from it"):
        manage.delete_version(settings, version.label)
    records.update_job(settings.db_path, job.id, status="done")
    with connect(settings.db_path) as db:
        config = {"columns": [{"template": "t", "model": CHAT_MODEL}, {"template": "t", "model": version.label}]}
        db["eval_runs"].insert(
            {"name": "vs base", "status": "running", "config": json.dumps(config), "created_at": records.now()}
        )
        run_id = db.execute("select max(id) from eval_runs").fetchone()[0]
    with pytest.raises(VersionError, match=f"evaluation run #{run_id} \\(running\\) has it as a column"):
        manage.delete_version(settings, version.label)
    with connect(settings.db_path) as db:
        db["eval_runs"].update(run_id, {"status": "done"})
    deleted = manage.delete_version(settings, version.label)
    assert not Path(deleted.path).exists()
    assert registry.find(settings.db_path, version.label) is None
    assert registry.list_versions(settings.db_path, include_deleted=True)[0].deleted_at  # the row stays
    with pytest.raises(VersionError, match="No trained version"):
        manage.delete_version(settings, version.label)


def test_delete_never_removes_files_outside_the_versions_folder(settings, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    version = register(settings, outside)
    manage.delete_version(settings, version.label)
    assert (outside / "keep.txt").exists()


def test_zip_holds_the_version_files(settings, tmp_path):
    folder = version_folder(settings)
    path = manage.zip_folder(folder, tmp_path / "out" / "a.zip")
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["adapter_config.json", "adapter_model.safetensors"]
        assert archive.read("adapter_model.safetensors") == b"weights"
    with pytest.raises(VersionError, match="files of this version are missing"):
        manage.zip_folder(tmp_path / "gone", tmp_path / "b.zip")


def test_only_lora_family_adapters_merge(settings, tmp_path):
    soft = register(settings, version_folder(settings, "soft"), name="soft", method="prompt_tuning")
    with pytest.raises(VersionError, match="soft prompt has no weights to merge"):
        manage.check_mergeable(soft)
    cls = register(settings, tmp_path, name="cls", kind="classifier", method="full", base_model="all-minilm-l6-v2")
    with pytest.raises(VersionError, match="whole classifier model already"):
        manage.check_mergeable(cls)


def test_evaluating_on_the_training_dataset_uses_only_its_held_out_rows(settings):
    df = pd.DataFrame({"sentence": [f"s{i}" for i in range(10)], "label": ["positive"] * 10})
    save_dataset(settings, "fpb", df, ColumnMapping(reference="label"))
    version = register(
        settings, version_folder(settings), config={"data": {"source": "dataset", "dataset": "fpb"}},
        row_ids=[0, 2, 4, 6, 8],
    )  # fmt: skip
    name, note = manage.heldout_dataset(settings, version, "fpb")
    assert name == "heldout-fpb-lora-v1" and "5 of 10 rows" in note
    held = load_dataset(settings, name)
    assert list(held.df["sentence"]) == ["s1", "s3", "s5", "s7", "s9"]
    assert held.mapping.reference == "label"
    assert manage.heldout_dataset(settings, version, "other") == ("other", "")


@pytest.mark.slow
def test_merge_writes_a_safetensors_folder_with_the_adapter_folded_in(settings, engine, tmp_path):
    import os

    import torch
    from safetensors.torch import load_file

    from llmplay.training.jobs import settings_env
    from tests.models.test_trained import make_adapter

    folder = make_adapter(engine, registry.versions_dir(settings.data_dir) / "merge-me" / "job-1")
    version = register(settings, folder, name="merge-me")
    out = manage.merged_dir(settings) / manage.slug(version.label)
    env = {**os.environ, **settings_env(settings)}
    manage.run_merge(version, out, tmp_path / "merge.log", env)
    assert {"model.safetensors", "config.json", "tokenizer.json", "llmplay_version.json"} <= {
        p.name for p in out.iterdir()
    }
    merged = load_file(out / "model.safetensors")
    base = engine.models.get(engine.catalog.get(CHAT_MODEL)).model.state_dict()
    adapter = load_file(folder / "adapter_model.safetensors")
    config = json.loads((folder / "adapter_config.json").read_text())
    name = "model.layers.0.self_attn.q_proj.weight"
    a = next(v for k, v in adapter.items() if "layers.0.self_attn.q_proj.lora_A" in k)
    b = next(v for k, v in adapter.items() if "layers.0.self_attn.q_proj.lora_B" in k)
    expected = base[name].float() + (b.float() @ a.float()) * (config["lora_alpha"] / config["r"])
    assert torch.allclose(merged[name].float(), expected, atol=1e-5)
    assert not torch.allclose(merged[name].float(), base[name].float())
    with pytest.raises(VersionError, match="soft prompt"):
        manage.run_merge(register(settings, folder, name="pt", method="prompt_tuning"), out, tmp_path / "l", env)
