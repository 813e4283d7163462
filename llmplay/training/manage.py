"""What a user does with a trained version besides using it: see who uses it, delete it, zip it for download,
and merge an adapter into its base as a standalone safetensors folder.

Merging loads the base model and so runs in a child process (``python -m llmplay.training.manage merge
VERSION_ID OUT_DIR``), like training: the app process does not grow by a model's size for it.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from llmplay.errors import LlmplayError
from llmplay.models import registry
from llmplay.models.registry import ModelVersion
from llmplay.settings import Settings
from llmplay.store import connect
from llmplay.training import records

log = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
MERGEABLE = ("lora", "adalora", "dora")  # prompt tuning is a soft prompt (nothing to merge); encoders are whole


class VersionError(LlmplayError):
    pass


def find_version(settings: Settings, label: str) -> ModelVersion:
    version = registry.find(settings.db_path, (label or "").strip())
    if version is None:
        raise VersionError(f"No trained version {label!r}: pick one from the versions list (it may have been deleted).")
    return version


def merged_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "models" / "merged"


def usage(settings: Settings, version: ModelVersion) -> list[str]:
    """Why ``version`` cannot be deleted now: jobs that train from it, evaluation runs that use it."""
    reasons = []
    for job in records.list_jobs(settings.db_path, limit=1000):
        if job.status in records.ACTIVE and job.config.get("parent_version") == version.label:
            reasons.append(f"training job #{job.id} ({job.status}) continues from it")
    reasons += stacked_on(settings, version)
    with connect(settings.db_path) as db:
        if "eval_runs" in db.table_names():
            for run in db.query("select id, status, config from eval_runs where status in ('queued', 'running')"):
                columns = json.loads(run["config"] or "{}").get("columns", [])
                if any(c.get("model") == version.label for c in columns):
                    reasons.append(f"evaluation run #{run['id']} ({run['status']}) has it as a column")
    return reasons


def stacked_on(settings: Settings, version: ModelVersion) -> list[str]:
    """Live versions trained on top of ``version`` (stack_on_parent): they load with its files merged first."""
    from llmplay.models.adapters import stack_of

    if version.kind != "adapter":
        return []
    mine = str(Path(version.path).resolve())
    reasons = []
    for other in registry.list_versions(settings.db_path):
        if other.id != version.id and other.kind == "adapter" and Path(other.path).is_dir():
            try:
                below = stack_of(other.path)
            except LlmplayError:
                continue
            if mine in below:
                reasons.append(f"{other.label} is stacked on it")
    return reasons


def delete_version(settings: Settings, label: str) -> ModelVersion:
    """Soft-delete a version (its row stays for history) and remove its files; refused while it is in use."""
    version = find_version(settings, label)
    reasons = usage(settings, version)
    if reasons:
        raise VersionError(f"{version.label} is in use and was not deleted: {'; '.join(reasons)}. Try again after.")
    registry.mark_deleted(settings.db_path, version.id)
    folder = Path(version.path)
    root = registry.versions_dir(settings.data_dir).resolve()
    if folder.exists() and folder.resolve().is_relative_to(root):  # never remove files outside the versions folder
        shutil.rmtree(folder, ignore_errors=True)
    return version


def heldout_dataset(settings: Settings, version: ModelVersion, dataset: str) -> tuple[str, str]:
    """The dataset to evaluate ``version`` on, and a note. When it is the dataset the version trained on, a saved
    copy without the training rows (``heldout-<name>-v<N>``), so the comparison is on rows it never saw."""
    data = (version.config or {}).get("data") or {}
    bare = dataset.removeprefix(BUILTIN_PREFIX)  # a built-in sample and its installed copy have the same rows
    if data.get("source") != "dataset" or str(data.get("dataset") or "").removeprefix(BUILTIN_PREFIX) != bare:
        return dataset, ""
    from llmplay.datasets import DatasetError, save_dataset
    from llmplay.training.data_sources import dataset_table

    df, mapping = dataset_table(settings, dataset)
    trained = {str(i) for i in version.row_ids}
    keep = [i for i in df.index if str(i) not in trained]
    if not keep:
        raise VersionError(f"{version.label} trained on every row of {dataset!r}: pick another dataset to evaluate on.")
    name = re.sub(r"[^A-Za-z0-9_-]", "-", f"heldout-{version.name}-v{version.version}")[:64]
    try:
        save_dataset(settings, name, df.loc[keep].reset_index(drop=True), mapping, source=f"held out of {dataset}")
    except DatasetError as exc:
        raise VersionError(f"Could not save the held-out rows of {dataset!r}: {exc}") from None
    note = f"{len(keep)} of {len(df)} rows of {dataset} that {version.label} did not train on (saved as {name})."
    return name, note


def zip_folder(folder: Path, target: Path) -> Path:
    """``folder``'s files in a zip at ``target`` (paths relative to the folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VersionError(f"The files of this version are missing ({folder}); it cannot be downloaded.")
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(folder))
    return target


def slug(label: str) -> str:
    """A file-name form of a label: "smollm2-135m-instruct + fpb-lora v2" -> "smollm2-135m-instruct+fpb-lora-v2"."""
    return label.replace(" + ", "+").replace(" ", "-")


def check_mergeable(version: ModelVersion) -> None:
    if version.kind != "adapter":
        raise VersionError(f"{version.label} is a whole {version.kind} model already; download it as a zip instead.")
    if version.method not in MERGEABLE:
        raise VersionError(
            f"{version.label} is a {version.method} adapter: a soft prompt has no weights to merge into the base. "
            "Use it as it is, or download the adapter."
        )


def merge_command(version: ModelVersion, out_dir: Path) -> list[str]:
    return [sys.executable, "-m", "llmplay.training.manage", "merge", str(version.id), str(out_dir)]


def run_merge(version: ModelVersion, out_dir: Path, log_path: Path, env: dict) -> None:
    """Merge in a child process (blocks until it ends); raises VersionError with the log's last line on failure."""
    check_mergeable(version)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        code = subprocess.call(
            merge_command(version, out_dir), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    if code != 0:
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
        raise VersionError(f"Merging {version.label} failed: {lines[-1] if lines else f'exit code {code}'}")


def merge_version(settings: Settings, version: ModelVersion, out_dir: Path) -> Path:
    """Load the base, apply and merge the adapter, save a safetensors folder (model + tokenizer) at ``out_dir``."""
    from llmplay.engine.engine import Engine

    check_mergeable(version)
    engine = Engine(settings)
    base = engine.catalog.get(version.base_model)
    # The loader merges LoRA-family adapters as it applies them: the loaded model is the merged one.
    loaded = engine.models.get(base, dtype="float32", adapter=version.path)
    out_dir = Path(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    loaded.model.save_pretrained(partial, safe_serialization=True)
    loaded.tokenizer.save_pretrained(partial)
    (partial / "llmplay_version.json").write_text(
        json.dumps({"label": version.label, "base_model": version.base_model, "method": version.method}, indent=2)
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)  # a folder that exists is complete
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmplay.training.manage")
    sub = parser.add_subparsers(dest="command", required=True)
    merge = sub.add_parser("merge", help="merge an adapter version into its base and save a safetensors folder")
    merge.add_argument("version_id", type=int)
    merge.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        version = registry.get_version(settings.db_path, args.version_id)
        out = merge_version(settings, version, args.out_dir)
    except LlmplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"merged {version.label} into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
