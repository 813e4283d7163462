"""`llmplay feedback ...` end to end on a real data folder: create, add, import, export, agreement, adjudicate."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llmplay import exitcodes
from llmplay.cli import main
from llmplay.feedback import store as fs
from llmplay.store import connect


@pytest.fixture()
def cli(tmp_path, capsys):
    data = tmp_path / "data"

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--data-dir", str(data), "feedback", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _db_path(tmp_path):
    from llmplay.settings import Settings

    return Settings(data_dir=tmp_path / "data").db_path


def test_create_add_label_agreement_adjudicate_export(cli, tmp_path):
    guidelines = tmp_path / "guide.md"
    guidelines.write_text("# Sentiment\nPositive or negative.", encoding="utf-8")
    code, out, err = cli(
        "create-queue", "sent", "--task", "label", "--labels", "pos,neg", "--k", "2", "--guidelines", str(guidelines)
    )
    assert code == exitcodes.OK, err
    assert out.strip() == "Created queue sent (label, k = 2, labels pos, neg)"
    ids = []
    for text in ("Great film.", "Dull film.", "Fine film."):
        code, out, err = cli("add", "--queue", "sent", "--prompt", text)
        assert code == 0, err
        ids.append(int(out.split("item ")[1].split()[0]))
    code, out, _ = cli("add", "--queue", "sent", "--prompt", "Great film.")
    assert out.startswith("Already in the queue: item") and code == 0

    with connect(_db_path(tmp_path)) as db:
        assert fs.get_queue(db, "sent").guidelines.startswith("# Sentiment")
        for item_id, ann, bob in zip(ids, ("pos", "neg", "pos"), ("pos", "neg", "neg")):
            fs.respond(db, item_id, "ann", ann)
            fs.respond(db, item_id, "bob", bob)

    code, out, _ = cli("agreement", "--queue", "sent", "--disagreements")
    assert code == 0
    assert "percent agreement   67%" in out and "Cohen's kappa" in out
    assert f'item {ids[2]}: ann: "pos"; bob: "neg"' in out
    code, out, _ = cli("agreement", "--queue", "sent", "--json")
    figures = json.loads(out)
    # po = 2/3; both labelers' marginals differ: ann pos 2/3, bob pos 1/3 -> pe = 2/9 + 2/9 = 4/9;
    # kappa = (2/3 - 4/9) / (5/9) = 0.4
    assert figures["cohen_kappa"] == pytest.approx(0.4) and figures["items_compared"] == 3

    code, out, err = cli("adjudicate", str(ids[2]), "pos", "--user", "lead")
    assert code == 0, err
    assert out.strip() == f'Item {ids[2]}: final answer "pos" by lead'

    code, out, err = cli("export", "--queue", "sent", "--format", "sft")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["messages"][-1]["content"] for r in rows] == ["pos", "neg", "pos"]
    assert "Exported 3 sft row(s) to stdout" in err

    target = tmp_path / "out" / "sent.csv"
    code, _, err = cli("export", "--queue", "sent", "--format", "csv", "--out", str(target))
    assert code == 0 and target.read_text(encoding="utf-8").startswith("item_id,queue,source,prompt")

    code, out, _ = cli("queues")
    header, line = out.splitlines()
    assert header.split() == ["QUEUE", "TASK", "K", "ITEMS", "COMPLETE", "ACCEPTED", "LABELERS", "AGREE", "KAPPA"]
    assert line.split() == ["sent", "label", "2", "3", "3", "3", "2", "67%", "0.400"]


def test_import_then_dpo_export_to_a_file(cli, tmp_path):
    assert cli("create-queue", "pairs", "--task", "preference")[0] == 0
    source = tmp_path / "pairs.jsonl"
    source.write_text(
        json.dumps({"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."})
        + "\n"
        + json.dumps({"prompt": "Bye", "output": "Bye now.", "output_b": "Whatever.", "labeler": "ann", "value": "b"})
        + "\n",
        encoding="utf-8",
    )
    code, out, err = cli("import", str(source), "--queue", "pairs", "--user", "lead")
    assert code == 0, err
    assert out.strip() == "Imported 2 row(s) into 'pairs': 2 new item(s), 0 already there, 2 response(s)."
    target = tmp_path / "pairs-dpo.jsonl"
    code, _, err = cli("export", "--queue", "pairs", "--format", "dpo", "--out", str(target), "--provenance")
    assert code == 0 and "Exported 2 dpo row(s), standard" in err
    assert [json.loads(line) for line in target.read_text().splitlines()] == [
        {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."},
        {"prompt": "Bye", "chosen": "Whatever.", "rejected": "Bye now."},
    ]
    assert len(json.loads((tmp_path / "pairs-dpo.jsonl.items.json").read_text())["item_ids"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "--queue", "nope", "--prompt", "x", "--output", "y"), "There is no feedback queue 'nope'"),
        (("create-queue", "bad name!", "--task", "label", "--labels", "a,b"), "Queue name 'bad name!' is not allowed"),
        (("create-queue", "q", "--task", "label", "--labels", "a"), "needs at least two labels"),
        (("create-queue", "q", "--task", "rating", "--k", "two"), "--k must be a whole number, not 'two'"),
        (("create-queue", "q", "--task", "correction", "--guidelines", "/no/such.md"), "does not exist"),
        (("import", "/no/such.jsonl", "--queue", "fix"), "File /no/such.jsonl does not exist"),
        (("adjudicate", "999", "x", "--user", "lead"), "There is no feedback item 999"),
        (("export", "--queue", "fix", "--format", "kto", "--provenance"), "give --out FILE too"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_stores_nothing(cli, tmp_path, args, message):
    assert cli("create-queue", "fix", "--task", "correction")[0] == 0
    with connect(_db_path(tmp_path)) as db:
        before = (db["feedback_queues"].count, db["feedback_items"].count, db["feedback_audit"].count)
    code, out, err = cli(*args)
    assert code == exitcodes.BAD_INPUT
    assert message in err and err.startswith("error: ")
    with connect(_db_path(tmp_path)) as db:
        assert (db["feedback_queues"].count, db["feedback_items"].count, db["feedback_audit"].count) == before


def test_malformed_import_exits_2_naming_the_line(cli, tmp_path):
    assert cli("create-queue", "fix", "--task", "correction")[0] == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "output": "b"}\n{"prompt": \n', encoding="utf-8")
    code, _, err = cli("import", str(bad), "--queue", "fix")
    assert code == exitcodes.BAD_INPUT and "bad.jsonl line 2: not valid JSON" in err
    with connect(_db_path(tmp_path)) as db:
        assert db["feedback_items"].count == 0


def test_the_installed_command_runs_as_a_subprocess(tmp_path):
    env_args = [sys.executable, "-m", "llmplay.cli", "--data-dir", str(tmp_path / "data"), "feedback"]
    made = subprocess.run(
        [*env_args, "create-queue", "q", "--task", "rating"], capture_output=True, text=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    listed = subprocess.run([*env_args, "queues", "--json"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["queue"] == "q"
    bad = subprocess.run(
        [*env_args, "export", "--queue", "q", "--format", "yaml"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == exitcodes.BAD_INPUT and "invalid choice: 'yaml'" in bad.stderr


def test_csv_export_to_stdout_writes_formula_cells_as_text(cli, tmp_path):
    assert cli("create-queue", "fix", "--task", "correction")[0] == exitcodes.OK
    code, out, err = cli("add", "--queue", "fix", "--prompt", "=1+1", "--output", "+cmd")
    assert code == exitcodes.OK, err
    code, out, err = cli("export", "--queue", "fix", "--format", "csv")
    assert code == exitcodes.OK, err
    import csv
    import io

    row = next(csv.DictReader(io.StringIO(out, newline="")))
    assert (row["prompt"], row["output"]) == ("'=1+1", "'+cmd")
