"""`llmplay train list`, `llmplay versions` and `llmplay train` refusing a missing config (no model needed)."""

from __future__ import annotations

import json

from llmplay.cli import main
from llmplay.models import registry
from llmplay.training import records


def test_train_list_and_versions_show_jobs_and_versions(settings, tmp_path, capsys):
    args = ["--data-dir", str(settings.data_dir)]
    assert main([*args, "train", "list"]) == 0
    assert "No training jobs yet" in capsys.readouterr().out
    job = records.create_job(settings.db_path, {"name": "cli-lora", "base_model": "smollm2-135m-instruct"})
    records.update_job(settings.db_path, job.id, status="failed", error="the data had no rows")
    version = registry.register(
        settings.db_path, name="cli-lora", base_model="smollm2-135m-instruct", kind="adapter", path=tmp_path,
        method="lora", metrics={"eval_loss": 0.25}, job_id=job.id,
    )  # fmt: skip
    assert main([*args, "train", "list"]) == 0
    out = capsys.readouterr().out
    assert "failed" in out and "cli-lora" in out and "the data had no rows" in out
    assert main([*args, "train", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "failed"
    assert main([*args, "versions"]) == 0
    out = capsys.readouterr().out
    assert version.label in out and "eval_loss 0.25" in out
    assert main([*args, "versions", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] == "smollm2-135m-instruct + cli-lora v1"


def test_train_refuses_a_missing_config_file(settings, capsys):
    assert main(["--data-dir", str(settings.data_dir), "train", "nowhere.yaml"]) == 2
    assert "No training config at 'nowhere.yaml'" in capsys.readouterr().err
