"""Bad inputs (issue 13): each refused with a message that says what was wrong, nothing half-written, and the
next good call still works.

Through the real entry points where they are cheap: the `llmplay` command (``main([...])``, exit code and
stderr), the core readers every tab and command share, and a real server started by ``launch`` for what
Gradio itself serves (``/gradio_api/file=`` must never hand out the SQLite file or anything outside the
exports folder). None of these load a model: each refusal comes before one. The tabs' half is in
tests/ui/test_bad_inputs_tabs.py.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import time
from pathlib import Path

import httpx
import pytest

from llmplay import exitcodes
from llmplay.cli import main
from llmplay.datasets import MAX_COLUMNS, DatasetError, list_datasets, read_table, save_dataset
from llmplay.errors import LlmplayError, ModelLoadError
from llmplay.feedback import imports, store
from llmplay.loop.lines import LineSettings, LoopError
from llmplay.models.catalog import Catalog, ModelSpec
from llmplay.models.loader import ModelManager
from llmplay.settings import Settings
from llmplay.store import connect
from llmplay.templates import TemplateLibrary
from llmplay.training.data_sources import TrainDataError, records_from_file
from tests.conftest import ROOT

PASSWD = "../../etc/passwd"


# ---- the command line ------------------------------------------------------------------------------------
@pytest.fixture
def cli(tmp_path, monkeypatch, model_cache_dir, capsys):
    """``run(*argv)`` -> (exit code, stdout, stderr) of `llmplay` on a fresh data dir and a copy of one template."""
    data, prompts = tmp_path / "data", tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "financial-sentiment.yaml").write_bytes((ROOT / "prompts" / "financial-sentiment.yaml").read_bytes())
    monkeypatch.setenv("LLMPLAY_DATA_DIR", str(data))
    monkeypatch.setenv("LLMPLAY_CACHE_DIR", str(model_cache_dir))
    monkeypatch.setenv("LLMPLAY_PROMPTS_DIR", str(prompts))
    for name in ("LLMPLAY_ALLOWED_MODEL_DIRS", "LLMPLAY_TRUST_REMOTE_CODE", "LLMPLAY_MAX_INPUT_CHARS"):
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    run.data = data
    return run


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["generate", "x" * 1_000_000], "1,000,000 characters; the limit is 32,000"),
        (["generate", "--max-new-tokens", "-5", "Hi"], "max_new_tokens must be between 1 and 2048; got -5"),
        (["generate", "--max-new-tokens", "1000000000", "Hi"], "max_new_tokens must be between 1 and 2048"),
        (["generate", "--temperature", "nan", "Hi"], "temperature must be a number between 0 and 2"),
        (["generate", "Hi\x00there"], "NUL character"),
        (["templates", "render", PASSWD], "is not a template name"),
        (["templates", "history", "/etc/passwd"], "is not a template name"),
        (["feedback", "create-queue", PASSWD, "--task", "correction"], "is not allowed: use 1-64 letters"),
        (["feedback", "create-queue", "q\x00", "--task", "correction"], "is not allowed"),
    ],
    ids=["1MB-prompt", "negative-max-tokens", "huge-max-tokens", "nan-temperature", "nul-prompt",
         "template-traversal", "template-absolute", "queue-traversal", "queue-nul"],
)  # fmt: skip
def test_the_command_refuses_bad_values_before_anything_loads(cli, argv, expected):
    started = time.perf_counter()
    code, out, err = cli(*argv)
    assert code == exitcodes.BAD_INPUT, (code, err)
    assert expected in err and out == "", err
    assert len(err) < 600, "an error must not echo the input back"
    assert time.perf_counter() - started < 5, "refused before a model load"
    assert not (cli.data / "models.yaml").exists()
    # Healthy after it: a good call on the same data dir works.
    code, out, _ = cli("templates", "list")
    assert code == exitcodes.OK and "financial-sentiment" in out


def test_models_add_path_outside_the_allowed_folders_is_refused(cli, tmp_path, monkeypatch):
    inside = cli.data / "models" / "mine"
    inside.mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for path in ("/etc", str(outside), str(cli.data / "models" / ".." / ".." / "elsewhere")):
        code, _, err = cli("models", "add", "probe", "--path", path)
        assert code == exitcodes.BAD_INPUT and "must be inside an allowed folder" in err, err
        assert "LLMPLAY_ALLOWED_MODEL_DIRS" in err, "the message names the setting that allows more"
        assert not (cli.data / "models.yaml").exists(), "nothing written"
    # Inside the data dir's models folder it is added; the setting allows another folder.
    assert cli("models", "add", "mine", "--path", str(inside))[0] == exitcodes.OK
    monkeypatch.setenv("LLMPLAY_ALLOWED_MODEL_DIRS", str(outside))
    assert cli("models", "add", "team", "--path", str(outside))[0] == exitcodes.OK
    names = Catalog(cli.data / "models.yaml").names()
    assert "mine" in names and "team" in names and "probe" not in names


def test_a_hub_model_asking_for_trust_remote_code_is_refused_unless_the_operator_allows_it(cli, monkeypatch):
    cli.data.mkdir()
    entry = {"name": "remote-coder", "kind": "chat", "source": "hub", "location": "someorg/custom-arch"}
    (cli.data / "models.yaml").write_text(json.dumps({"models": [entry | {"trust_remote_code": True}]}))
    code, _, err = cli("models", "prepare", "remote-coder")
    assert code == exitcodes.RUN_FAILED and "asks for trust_remote_code" in err, err
    assert "LLMPLAY_TRUST_REMOTE_CODE=1" in err
    # Adding one is refused at once, and the file keeps what it had.
    settings = Settings.from_env()
    before = (cli.data / "models.yaml").read_bytes()
    with pytest.raises(LlmplayError, match="LLMPLAY_TRUST_REMOTE_CODE=1"):
        Catalog(settings.models_file, settings=settings).add(
            ModelSpec(**entry | {"name": "other"}, trust_remote_code=True)
        )
    assert (cli.data / "models.yaml").read_bytes() == before
    # A model added through the web UI never may, even with the setting on; the operator's entry then may.
    allowed = settings.with_(trust_remote_code=True)
    user = ModelSpec(**entry | {"name": "u", "added_by": "user"}, trust_remote_code=True)
    with pytest.raises(LlmplayError, match="web UI never may"):
        Catalog(settings.models_file, settings=allowed).add(user, persist=False)
    spec = Catalog(settings.models_file, settings=allowed).get("remote-coder")
    with pytest.raises(ModelLoadError) as info:  # past the check: the Hub is offline in tests
        ModelManager(allowed).get(spec)
    assert "trust_remote_code" not in str(info.value)


def test_trust_remote_code_is_passed_explicitly_to_every_from_pretrained():
    """transformers' default may change; every model or tokenizer load in llmplay says what it means."""
    missing = []
    for path in sorted((ROOT / "llmplay").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"(\w+)\.from_pretrained\(", text):
            if match.group(1) == "PeftModel":  # adapters are weights only: no code to trust
                continue
            depth, end = 1, match.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
            if "trust_remote_code" not in text[match.end() : end]:
                missing.append(f"{path.relative_to(ROOT)}: {text[match.start() : end]}")
    assert not missing, missing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dataset: [unclosed\n", "is not valid YAML"),
        ('{"dataset": "x", "templates": ["a"],\n', "is not valid YAML"),  # malformed JSON (YAML reads JSON)
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("dataset: &d x\ntemplates: [*d]\n", "anchors and aliases"),
    ],
    ids=["yaml", "json", "not-a-mapping", "alias"],
)
def test_a_malformed_eval_config_is_refused_and_runs_nothing(cli, tmp_path, text, expected):
    config = tmp_path / "run.yaml"
    config.write_text(text, encoding="utf-8")
    code, _, err = cli("eval", str(config))
    assert code == exitcodes.BAD_INPUT and expected in err, err
    assert not (cli.data / "llmplay.db").exists() or _count(cli.data / "llmplay.db", "eval_runs") == 0


def _count(db_path: Path, table: str) -> int:
    with connect(db_path) as db:
        return db[table].count if db[table].exists() else 0


# ---- feedback imports and queues -------------------------------------------------------------------------
@pytest.fixture
def queue_db(tmp_path):
    path = tmp_path / "llmplay.db"
    with connect(path) as db:
        store.create_queue(db, "q", "correction", user="admin")
    return path


def _items(path: Path) -> int:
    with connect(path) as db:
        return len(store.list_items(db, queue="q"))


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("latin1.jsonl", '{"prompt": "caf\u00e9"}\n'.encode("latin-1"), "is not UTF-8 text (byte 15)"),
        ("broken.jsonl", b'{"prompt": "a"}\n{"prompt": "b",\n', "line 2: not valid JSON"),
        ("nul.jsonl", b'{"prompt": "a\\u0000b", "output": "o"}\n', "NUL character"),
        ("bomb.jsonl.gz", gzip.compress(b'{"prompt": "a"}\n' * 100_000), "takes .jsonl, .json or .csv"),
        ("bomb.jsonl", gzip.compress(b'{"prompt": "a"}\n' * 100_000), "is a compressed archive"),
        ("long.jsonl", json.dumps({"prompt": "p", "output": "x" * 30_000}).encode(), "30,000 characters"),
    ],
    ids=["non-utf8", "malformed-json", "nul", "gz-suffix", "gzip-as-jsonl", "long-reply"],
)
def test_a_bad_feedback_import_stores_nothing(queue_db, tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with connect(queue_db) as db, pytest.raises(LlmplayError) as info:
        imports.import_file(db, path, "q")
    assert expected in str(info.value), str(info.value)
    assert _items(queue_db) == 0
    good = tmp_path / "good.jsonl"
    good.write_text('{"prompt": "fine", "output": "ok"}\n', encoding="utf-8")
    with connect(queue_db) as db:
        assert imports.import_file(db, good, "q").added == 1


def test_an_oversized_feedback_import_is_refused_before_it_is_read(queue_db, tmp_path, monkeypatch):
    monkeypatch.setattr(imports, "MAX_IMPORT_BYTES", 10_000)
    path = tmp_path / "big.jsonl"
    path.write_text('{"prompt": "p"}\n' * 1_000, encoding="utf-8")
    with connect(queue_db) as db, pytest.raises(LlmplayError, match="the import limit is"):
        imports.import_file(db, path, "q")
    assert _items(queue_db) == 0


def test_a_duplicate_queue_name_is_refused_and_the_first_queue_is_unchanged(queue_db):
    with connect(queue_db) as db:
        with pytest.raises(LlmplayError, match="A queue named 'q' exists already"):
            store.create_queue(db, "q", "label", labels=["a", "b"], user="admin")
        assert [(q.name, q.task) for q in store.list_queues(db)] == [("q", "correction")]


def test_line_settings_refuse_path_like_queue_names_and_out_of_range_numbers():
    for bad, expected in [
        ({"queues": [PASSWD]}, "is not a queue name"),
        ({"preference_queues": ["a/b"]}, "is not a queue name"),
        ({"learning_rate": float("inf")}, "learning_rate must be a number from 1e-07 to 1"),
        ({"batch_size": -1}, "batch_size must be a whole number from 1 to 256"),
        ({"max_new_tokens": 10**9}, "max_new_tokens must be a whole number from 1 to 512"),
    ]:
        with pytest.raises(LoopError) as info:
            LineSettings.from_dict(bad)
        assert expected in str(info.value), str(info.value)
    assert LineSettings.from_dict({"queues": ["inbox", "team-1.v2"]}).queues == ["inbox", "team-1.v2"]


# ---- uploads: evaluation datasets and training files -----------------------------------------------------
@pytest.fixture
def small(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", upload_max_bytes=200_000)


def _parquet_bomb(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # 20 rows of one 100 KB text, stored once (an Arrow dictionary): a few KB on disk, 2 MB once read.
    column = pa.DictionaryArray.from_arrays(pa.array([0] * 20, pa.int32()), pa.array(["a" * 100_000]))
    pq.write_table(pa.table({"text": column}), path, compression="zstd")


@pytest.mark.parametrize(
    ("name", "write", "expected"),
    [
        ("big.csv", lambda p: p.write_text("text\n" + "row\n" * 60_000), "the upload limit is 195.3 KB"),
        ("bomb.parquet", _parquet_bomb, "expands to"),
        ("data.csv", lambda p: p.write_bytes(gzip.compress(b"text\n" + b"x\n" * 100_000)), "a gzip archive"),
        ("wide.csv", lambda p: p.write_text(",".join(f"c{i}" for i in range(20_000)) + "\n" + "1," * 19_999 + "1\n"),
         f"20,000 columns; the limit is {MAX_COLUMNS:,}"),
        ("keys.jsonl", lambda p: p.write_text(json.dumps({f"k{i}": 1 for i in range(5_000)}) + "\n"),
         "line 1: an object has 5,000 keys"),
        ("line.csv", lambda p: p.write_text("text\n" + "x" * 150_000 + "\n"), "a cell is longer than 131,072"),
        ("nul.csv", lambda p: p.write_bytes(b"text\nab\x00cd\n"), "looks like a binary file"),
        ("dupe.json", lambda p: p.write_text('[{"a": 1, "a": 2}]'), "duplicate key(s) in one object: a"),
    ],
    ids=["oversized", "parquet-bomb", "gzip-as-csv", "20k-columns", "5k-keys", "150KB-cell", "nul", "dupe-key"],
)  # fmt: skip
def test_a_bad_upload_is_refused_fast_with_what_was_wrong(small, tmp_path, name, write, expected):
    path = tmp_path / name
    write(path)
    started = time.perf_counter()
    with pytest.raises(DatasetError) as info:
        read_table(path, small)
    assert expected in str(info.value) and name in str(info.value), str(info.value)
    assert time.perf_counter() - started < 2
    # The training loaders read uploads with the same limits (a size or binary check may refuse them first).
    with pytest.raises(TrainDataError) as refused:
        records_from_file(small, str(path))
    assert name in str(refused.value) and any(
        words in str(refused.value) for words in ("Cannot read data.file", "the upload limit is 195.3 KB", "binary")
    ), str(refused.value)


def test_a_million_column_header_is_refused_in_well_under_a_second(small, tmp_path):
    """Before the column limit, the duplicate-name check alone was quadratic: 10**12 steps."""
    path = tmp_path / "million.csv"
    path.write_text(",".join(map(str, range(1_000_000))) + "\n" + "x" + "," * 999_999 + "\n")
    started = time.perf_counter()
    with pytest.raises(DatasetError, match="1,000,000 columns"):
        read_table(path, Settings(data_dir=small.data_dir))
    assert time.perf_counter() - started < 3


def test_dataset_names_are_safe_and_a_duplicate_name_keeps_the_first(small, tmp_path):
    import pandas as pd

    df = pd.DataFrame({"text": ["a", "b"]}, dtype=object)
    for name in (PASSWD, "/etc/passwd", "a\x00b", "a/b", "", "x" * 65):
        with pytest.raises(DatasetError, match="is not a dataset name"):
            save_dataset(small, name, df)
    assert not (small.data_dir / "datasets").exists() or not list((small.data_dir / "datasets").iterdir())
    save_dataset(small, "mine", df)
    before = files_under(small.data_dir / "datasets")
    with pytest.raises(DatasetError, match="already exists with other content"):
        save_dataset(small, "mine", pd.DataFrame({"text": ["c"]}, dtype=object))
    assert files_under(small.data_dir / "datasets") == before
    assert [d.rows for d in list_datasets(small)] == [2]


def test_training_files_outside_read_table_have_the_size_and_row_limits(small, tmp_path, monkeypatch):
    from llmplay.training import data_sources
    from llmplay.training.data_sources import pair_records
    from llmplay.training.encoder_data import EncoderDataError, _file_rows

    big = tmp_path / "pairs.jsonl"
    big.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n' * 5_000)
    with pytest.raises(TrainDataError, match="is 234.4 KB; the upload limit is 195.3 KB"):
        pair_records(small, str(big))
    conll = tmp_path / "eng.train"
    conll.write_text("EU B-ORG\n\n" * 30_000)

    class Data:  # the two fields _file_rows reads
        file, format = str(conll), "conll"

    with pytest.raises(EncoderDataError, match="the upload limit is"):
        _file_rows(Data, small, "ner")
    monkeypatch.setattr(data_sources, "MAX_FILE_ROWS", 100)  # the row limit, without writing 100,001 rows
    conll.write_text("EU B-ORG\n\n" * 101)
    with pytest.raises(EncoderDataError, match="101 rows; the limit is 100"):
        _file_rows(Data, small, "ner")
    conll.write_text("EU B-ORG\n\n" * 100)
    assert len(_file_rows(Data, small, "ner")[0]) == 100


# ---- templates ------------------------------------------------------------------------------------------
def test_template_names_and_texts_are_checked_and_nothing_is_written(tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    library = TemplateLibrary(folder, tmp_path / "llmplay.db")
    for name in (PASSWD, "/etc/passwd", "a\x00b", "UPPER"):
        with pytest.raises(LlmplayError, match="not a template name"):
            library.path(name)
        with pytest.raises(LlmplayError):
            library.save(f"name: {json.dumps(name)}\ntask: generation\nbody: hi\n")
    bad = {
        "nul": ("name: t\ntask: generation\nbody: a\x00b\n", "special characters are not allowed"),
        "huge": ("name: t\ntask: generation\nbody: " + "x" * 1_100_000 + "\n", "too long"),
    }
    for text, expected in bad.values():
        with pytest.raises(LlmplayError) as info:
            library.save(text)
        assert expected in str(info.value), str(info.value)[:300]
    latin1 = tmp_path / "t.yaml"
    latin1.write_bytes("name: t\ntask: generation\nbody: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(LlmplayError, match="is not UTF-8 text"):
        library.import_file(latin1)
    assert list(folder.iterdir()) == [] and not (tmp_path.parent / "etc").exists()
    assert library.deleted() == [], "no history was recorded for a refused template"
    assert library.save("name: ok\ntask: generation\nbody: hi\n").version.number == 1
    assert library.names() == ["ok"]


# ---- what Gradio serves ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory, model_cache_dir):
    """The app as ``llmplay serve`` runs it (``launch``), on a free port, with a small upload limit."""
    from llmplay.engine import Engine
    from llmplay.tempfiles import exports_dir
    from llmplay.ui import app
    from tests.ui.conftest import free_port

    data = tmp_path_factory.mktemp("served")
    settings = Settings(data_dir=data / "data", cache_dir=model_cache_dir, upload_max_bytes=50_000)
    with connect(settings.db_path) as db:
        store.create_queue(db, "q", "correction", user="admin")
    exports = exports_dir(settings)
    exports.mkdir(parents=True)
    (exports / "results.csv").write_text("a,b\n1,2\n")
    (settings.data_dir / "models.yaml").write_text("models: []\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(data / "gradio-tmp"))
        mp.setattr(app, "warm_default_model", lambda engine: None)  # no model: this is about files
        handle = app.launch(Engine(settings), host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
        try:
            yield handle.local_url.rstrip("/"), settings
        finally:
            handle.close()


def test_gradio_serves_the_exports_folder_and_nothing_else_of_the_data_dir(served):
    url, settings = served
    from llmplay.tempfiles import exports_dir

    export = exports_dir(settings).resolve() / "results.csv"
    ok = httpx.get(f"{url}/gradio_api/file={export}")
    assert ok.status_code == 200 and ok.text == "a,b\n1,2\n", "the route works for what the app means to serve"
    db = settings.db_path.resolve()
    refused = [
        f"/gradio_api/file={db}",
        f"/gradio_api/file={db.parent / 'models.yaml'}",
        f"/gradio_api/file={export.parent}/../../llmplay.db",
        f"/gradio_api/file={export.parent}/%2e%2e/%2e%2e/llmplay.db",
        "/gradio_api/file=../../etc/passwd",
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=llmplay.db",
        "/file=/etc/passwd",
    ]
    for path in refused:
        reply = httpx.get(url + path)
        assert reply.status_code in (400, 403, 404), (path, reply.status_code)
        assert b"SQLite format" not in reply.content and b"root:" not in reply.content, path
    healthy = httpx.get(f"{url}/health")
    assert healthy.status_code == 200 and healthy.json()["scheduler"]["ok"] is True, healthy.json()


def test_an_upload_over_the_limit_is_refused_by_the_server_and_not_stored(served):
    url, settings = served
    stored = set(Path(settings.data_dir.parent / "gradio-tmp").rglob("*"))
    big = io.BytesIO(b"text\n" + b"x" * 60_000)
    reply = httpx.post(f"{url}/gradio_api/upload", files={"files": ("big.csv", big, "text/csv")})
    assert reply.status_code == 413, reply.text
    assert set(Path(settings.data_dir.parent / "gradio-tmp").rglob("*")) == stored
    small = httpx.post(f"{url}/gradio_api/upload", files={"files": ("ok.csv", io.BytesIO(b"text\nhi\n"), "text/csv")})
    assert small.status_code == 200 and small.json()[0].endswith("ok.csv")
    assert httpx.get(f"{url}/health").status_code == 200
