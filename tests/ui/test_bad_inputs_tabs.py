"""Bad inputs through the tabs' endpoints on the live session app (issue 13; the command and core half is in
tests/test_bad_inputs.py): each refused with what was wrong, nothing stored, and the app answers the next
good call. No model loads: every refusal comes before one.
"""

from __future__ import annotations

import gzip
import time

import pytest
from gradio_client import handle_file

from llmplay.datasets import list_datasets
from llmplay.templates import TemplateLibrary
from llmplay.ui.common import ERROR
from tests.conftest import CHAT_MODEL

DECODING = {"max_new_tokens": 4, "temperature": 0, "top_p": 1, "top_k": 0, "repetition_penalty": 1, "seed": ""}


@pytest.fixture(scope="module")
def library(engine, ui_prompts_dir) -> TemplateLibrary:
    return TemplateLibrary.from_settings(engine.settings, ui_prompts_dir)  # the app's: data dir over shipped


@pytest.mark.parametrize(
    ("message", "expected"),
    [("x" * 1_000_000, "1,000,000 characters; the limit is 32,000"), ("a\x00b", "NUL character")],
    ids=["1MB-prompt", "nul"],
)
def test_playground_refuses_the_prompt_before_it_loads_a_model(client, message, expected):
    started = time.perf_counter()
    history, status = client.predict(
        message=message, history=[], model=CHAT_MODEL, system_message="", **DECODING, api_name="/chat"
    )
    assert ERROR in status and expected in status, status[:300]
    assert history == [] and len(status) < 600
    assert time.perf_counter() - started < 20, "refused before a model load"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: ../../etc/passwd\ntask: generation\nbody: hi\n", "name"),
        ("name: ok-name\ntask: generation\nbody: a\x00b\n", "special characters"),
        ("name: [unclosed\n", "line"),
    ],
    ids=["traversal-name", "nul-body", "malformed-yaml"],
)
def test_templates_tab_refuses_a_bad_template_and_writes_nothing(client, library, ui_prompts_dir, text, expected):
    def files():
        return sorted(p.name for folder in (ui_prompts_dir.parent, library.folder) for p in folder.rglob("*"))

    before = files()
    status, _ = client.predict(yaml_text=text, message="bad", api_name="/save_template")
    assert status.startswith(ERROR) and expected in status, status
    assert files() == before
    assert "passwd" not in library.names() and "ok-name" not in library.names()


def test_templates_tab_refuses_a_non_utf8_import(client, library, tmp_path):
    names = library.names()
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: latin\ntask: generation\nbody: caf\u00e9\n".encode("latin-1"))
    status, _ = client.predict(file=handle_file(str(path)), overwrite=False, api_name="/import_template")
    assert status.startswith(ERROR) and "not UTF-8" in status, status
    assert library.names() == names


def _parquet_bomb(path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # 300 cells of one 1 MB text, stored once (an Arrow dictionary): a few KB on disk, 300 MB decoded (the
    # session's limit is 4 x 50 MB).
    column = pa.DictionaryArray.from_arrays(pa.array([0] * 300, pa.int32()), pa.array(["a" * 1_000_000]))
    pq.write_table(pa.table({"text": column}), path, compression="zstd")


@pytest.mark.parametrize(
    ("filename", "write", "expected"),
    [
        ("bomb.parquet", _parquet_bomb, "expands to more than"),
        ("wide.csv", lambda p: p.write_text(",".join(f"c{i}" for i in range(5_000)) + "\n" + "1," * 4_999 + "1\n"),
         "5,000 columns; the limit is 1,000"),
        ("packed.csv", lambda p: p.write_bytes(gzip.compress(b"text\n" + b"x\n" * 1_000_000)), "a gzip archive"),
    ],
    ids=["parquet-bomb", "5k-columns", "gzip"],
)  # fmt: skip
def test_evaluate_tab_refuses_a_bad_upload_and_saves_nothing(client, engine, tmp_path, filename, write, expected):
    before = [d.name for d in list_datasets(engine.settings)]
    path = tmp_path / filename
    write(path)
    info, preview, *_ = client.predict(file=handle_file(str(path)), template="", api_name="/eval_upload_preview")
    assert info.startswith(ERROR) and filename in info and expected in info, info
    assert preview["data"] == []
    message, _, _ = client.predict(
        file=handle_file(str(path)), name="bad-upload", variables="", reference="", api_name="/eval_save_dataset"
    )
    assert message.startswith(ERROR) and expected in message, message
    assert [d.name for d in list_datasets(engine.settings)] == before


def test_evaluate_tab_refuses_a_path_as_a_dataset_name_and_then_saves_a_good_one(client, engine, tmp_path):
    path = tmp_path / "fine.csv"
    path.write_text("text,label\nProfits rose.,positive\n", encoding="utf-8")
    before = [d.name for d in list_datasets(engine.settings)]
    for name in ("../../etc/passwd", "/tmp/x", "a\x00b"):
        message, _, _ = client.predict(
            file=handle_file(str(path)), name=name, variables="", reference="label", api_name="/eval_save_dataset"
        )
        assert message.startswith(ERROR) and "is not a dataset name" in message, message
    assert [d.name for d in list_datasets(engine.settings)] == before
    assert not (engine.settings.data_dir.parent / "etc").exists()
    good = {"name": "bad-inputs-ok", "variables": "", "reference": "label"}
    message, _, _ = client.predict(file=handle_file(str(path)), **good, api_name="/eval_save_dataset")
    assert message.startswith("✅"), message
    assert "bad-inputs-ok" in [d.name for d in list_datasets(engine.settings)]
