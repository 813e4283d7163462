"""Training data: every source and format, rendered exactly as inference renders it (real SmolLM2 tokenizer and
chat template; Gemma-3 once for the base-model path), completion-only labels, seeded splits, truncation, and the
messages a user gets for bad data."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.engine.prompt_text import encode_prompt, render_prompt
from llmplay.engine.types import GenerationRequest
from llmplay.feedback.sources import flag_for_correction, send_correction, send_preference
from llmplay.feedback.store import mark_consumed
from llmplay.store import connect
from llmplay.templates import TemplateLibrary, render_for_model
from llmplay.training.config import TrainConfig
from llmplay.training.data import (
    IGNORE_INDEX,
    TRAINED_MARKERS,
    TrainDataError,
    build_examples,
    load_rows,
    preview,
    split_rows,
)
from tests.conftest import BASE_MODEL, CHAT_MODEL, SHARED_DATASETS

END_OF_TURN = "<|im_end|>"  # SmolLM2's
DOCS = ["The first document runs a little longer than eight tokens.", "The second one, too, spans a chunk."]


def make_config(data: dict, **overrides) -> TrainConfig:
    return TrainConfig.from_dict({"name": "t", "base_model": CHAT_MODEL, "max_length": 1024, **overrides, "data": data})


def inline(rows: list[dict], **data) -> TrainConfig:
    overrides = {k: data.pop(k) for k in ("max_length", "task", "seed") if k in data}
    return make_config({"source": "rows", "rows": rows, **data}, **overrides)


@pytest.fixture(scope="module")
def smol(engine):
    return engine.models.get(engine.catalog.get(CHAT_MODEL))


def decode(loaded, ids: list[int]) -> str:
    return loaded.tokenizer.decode(ids, skip_special_tokens=False)


def check_labels(example) -> None:
    """Labels mask exactly the prompt tokens and copy every other one."""
    p = example.prompt_tokens
    assert p > 0 and p < len(example.input_ids)
    assert example.labels[:p] == [IGNORE_INDEX] * p
    assert example.labels[p:] == example.input_ids[p:]


# ---- the formatted text is what inference renders --------------------------------------------------------


def test_template_rows_render_exactly_as_inference_plus_target_and_end_of_turn(engine, settings, smol):
    config = make_config(
        {"source": "dataset", "dataset": "builtin:financial-sentiment", "template": "financial-sentiment"}
    )
    data = load_rows(config, settings)
    assert data.format == "template" and data.template_ref.startswith("financial-sentiment@v")
    assert len(data.rows) == 20 and data.row_ids == list(range(20))
    template = TemplateLibrary.from_settings(settings).load("financial-sentiment")
    examples = build_examples(config, smol, data.rows)
    for row, example in zip(data.rows[:4], examples):
        rendered = render_for_model(engine, template, CHAT_MODEL, row.values)  # what Templates / Evaluate send
        assert row.target in ("positive", "negative", "neutral")
        assert decode(smol, example.input_ids) == rendered.text + row.target + END_OF_TURN
        assert example.input_ids[: example.prompt_tokens] == encode_prompt(smol, rendered.text)
        assert example.prompt_tokens == rendered.token_count
        assert decode(smol, example.input_ids[example.prompt_tokens :]) == row.target + END_OF_TURN
        assert not example.truncated
        check_labels(example)


def test_prompt_completion_rows_render_as_the_playground_sends_them(smol, settings):
    rows = [
        {"prompt": "What is the capital of France?", "completion": "Paris."},
        {"prompt": "Say hi.", "completion": "Hi!", "system": "You are terse."},
    ]
    config = inline(rows)
    data = load_rows(config, settings)
    assert data.format == "prompt_completion"
    first, second = build_examples(config, smol, data.rows)
    playground = render_prompt(smol, GenerationRequest.of([{"role": "user", "content": rows[0]["prompt"]}]))
    assert decode(smol, first.input_ids) == playground + "Paris." + END_OF_TURN
    with_system = render_prompt(
        smol,
        GenerationRequest.of([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hi."}]),
    )
    assert decode(smol, second.input_ids) == with_system + "Hi!" + END_OF_TURN
    assert "You are terse." in with_system
    check_labels(first)
    check_labels(second)


def test_chat_messages_train_the_last_assistant_turn(smol, settings):
    turns = [
        {"role": "system", "content": "Answer with a number."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
    ]
    config = inline([{"messages": turns}])
    data = load_rows(config, settings)
    assert data.format == "messages" and data.rows[0].target == "6"
    (example,) = build_examples(config, smol, data.rows)
    prompt = smol.tokenizer.apply_chat_template(turns[:-1], add_generation_prompt=True, tokenize=False)
    assert decode(smol, example.input_ids) == prompt + "6" + END_OF_TURN
    assert decode(smol, example.input_ids[example.prompt_tokens :]) == "6" + END_OF_TURN  # earlier "4" masked
    check_labels(example)


def test_alpaca_rows_join_instruction_and_input(smol, settings):
    rows = [
        {"instruction": "Translate to German.", "input": "Good morning", "output": "Guten Morgen"},
        {"instruction": "Name a primary colour.", "input": "", "output": "Red"},
    ]
    config = inline(rows)
    data = load_rows(config, settings)
    assert data.format == "alpaca"
    assert [r.prompt for r in data.rows] == ["Translate to German.\n\nGood morning", "Name a primary colour."]
    first, _ = build_examples(config, smol, data.rows)
    expected = render_prompt(smol, GenerationRequest.of("Translate to German.\n\nGood morning"))
    assert decode(smol, first.input_ids) == expected + "Guten Morgen" + END_OF_TURN


def test_base_model_rows_are_the_template_text_then_target_and_eos(engine, settings):
    """Gemma-3-270M has no chat template: few-shot text, the target, its eos token (encode_prompt adds BOS)."""
    gemma = engine.models.get(engine.catalog.get(BASE_MODEL))
    config = make_config(
        {"source": "dataset", "dataset": "builtin:financial-sentiment", "template": "financial-sentiment"},
        base_model=BASE_MODEL,
    )
    rows = load_rows(config, settings).rows[:3]
    template = TemplateLibrary.from_settings(settings).load("financial-sentiment")
    tok = gemma.tokenizer
    for row, example in zip(rows, build_examples(config, gemma, rows)):
        text = render_for_model(engine, template, BASE_MODEL, row.values).text
        assert text.endswith(row.values["text"] + "\n")  # base_model_prompt: the answer goes on the next line
        target_ids = tok(row.target, add_special_tokens=False)["input_ids"]
        assert example.input_ids == encode_prompt(gemma, text) + target_ids + [tok.eos_token_id]
        check_labels(example)
    plain = make_config({"source": "rows", "rows": [{"prompt": "The capital of France is", "completion": " Paris"}]})
    (example,) = build_examples(plain, gemma, load_rows(plain, settings).rows)
    assert example.input_ids[: example.prompt_tokens] == encode_prompt(gemma, "The capital of France is")


# ---- files, datasets, the feedback inbox -----------------------------------------------------------------


def write_files(folder):
    pc = [{"prompt": f"Question {i}?", "completion": f"Answer {i}."} for i in range(4)]
    chats = [
        {"messages": [{"role": "user", "content": f"Hi {i}"}, {"role": "assistant", "content": f"Hello {i}"}]}
        for i in range(3)
    ]
    alpaca = [{"instruction": "Add one.", "input": str(i), "output": str(i + 1)} for i in range(5)]
    files = {
        "pc.csv": pd.DataFrame(pc).to_csv(index=False),
        "pc.tsv": pd.DataFrame(pc).to_csv(index=False, sep="\t"),
        "chat.jsonl": "\n".join(json.dumps(c) for c in chats) + "\n",
        "alpaca.json": json.dumps(alpaca),
        "notes.csv": pd.DataFrame({"text": DOCS}).to_csv(index=False),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    pd.DataFrame(pc).to_parquet(folder / "pc.parquet")
    return folder


@pytest.mark.parametrize(
    ("name", "fmt", "count", "first_target"),
    [
        ("pc.csv", "prompt_completion", 4, "Answer 0."),
        ("pc.tsv", "prompt_completion", 4, "Answer 0."),
        ("pc.parquet", "prompt_completion", 4, "Answer 0."),
        ("chat.jsonl", "messages", 3, "Hello 0"),
        ("alpaca.json", "alpaca", 5, "1"),
    ],
)
def test_each_file_format_is_detected_and_read(tmp_path, settings, smol, name, fmt, count, first_target):
    path = write_files(tmp_path) / name
    config = make_config({"source": "file", "file": str(path)})
    data = load_rows(config, settings)
    assert (data.format, len(data.rows), data.rows[0].target) == (fmt, count, first_target)
    assert data.row_ids == list(range(count))
    for example in build_examples(config, smol, data.rows):
        check_labels(example)


def test_text_file_for_continued_pretraining_is_chunked_with_eos_between_documents(tmp_path, settings, smol):
    path = write_files(tmp_path) / "notes.csv"
    config = make_config({"source": "file", "file": str(path)}, task="cpt", max_length=8)
    data = load_rows(config, settings)
    assert data.format == "text" and [r.text for r in data.rows] == DOCS
    examples = build_examples(config, smol, data.rows)
    tok = smol.tokenizer
    stream = [t for e in examples for t in e.input_ids]
    docs = [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in DOCS]
    assert stream == docs[0] + docs[1]
    assert all(len(e.input_ids) <= 8 and e.labels == e.input_ids for e in examples)
    assert len(examples) > 2 and examples[0].row_id == 0 and examples[-1].row_id == 1


def test_file_with_template_uses_its_columns_like_a_dataset(tmp_path, settings, smol):
    path = tmp_path / "fpb.csv"
    path.write_text("text,label\nProfits doubled.,positive\nThe plant closed.,negative\n", encoding="utf-8")
    config = make_config({"source": "file", "file": str(path), "template": "financial-sentiment"})
    data = load_rows(config, settings)
    assert data.format == "template"
    assert [(r.values, r.target) for r in data.rows] == [
        ({"text": "Profits doubled."}, "positive"),
        ({"text": "The plant closed."}, "negative"),
    ]


def test_saved_dataset_with_label_column_override_and_validation_dataset(settings, smol):
    frame = pd.DataFrame(
        {"sentence": ["Sales rose.", "Sales fell.", "A meeting."], "gold": ["positive", "negative", "neutral"]}
    )
    save_dataset(settings, "tiny", frame, ColumnMapping({"text": "sentence"}, None))
    save_dataset(settings, "tiny-val", frame.head(1), ColumnMapping({"text": "sentence"}, None))
    data = {"source": "dataset", "dataset": "tiny", "template": "financial-sentiment"}
    with pytest.raises(TrainDataError, match="no reference column.*sentence, gold.*label_column"):
        load_rows(make_config(data), settings)
    config = make_config({**data, "label_column": "gold", "validation_dataset": "tiny-val"})
    loaded = load_rows(config, settings)
    assert [r.target for r in loaded.rows] == ["positive", "negative", "neutral"]
    train, validation = split_rows(config, loaded)
    assert len(train) == 3 and [r.values for r in validation] == [{"text": "Sales rose."}]


def test_validation_dataset_in_a_file_format_and_cpt_from_a_dataset(tmp_path, settings, smol):
    pairs = pd.DataFrame({"prompt": ["Q1?", "Q2?"], "completion": ["A1.", "A2."]})
    save_dataset(settings, "pc-val", pairs)
    path = tmp_path / "train.csv"
    pairs.to_csv(path, index=False)
    config = make_config({"source": "file", "file": str(path), "validation_dataset": "pc-val"})
    train, validation = split_rows(config, load_rows(config, settings))
    assert [r.target for r in train] == [r.target for r in validation] == ["A1.", "A2."]
    cpt = make_config({"source": "dataset", "dataset": "builtin:financial-sentiment"}, task="cpt", max_length=64)
    data = load_rows(cpt, settings)
    assert data.format == "text" and data.rows[0].text.startswith("Northwind Foods")
    examples = build_examples(cpt, smol, data.rows)
    assert sum(len(e.input_ids) for e in examples) > 20 * 10 and all(len(e.input_ids) <= 64 for e in examples)


def test_feedback_trains_on_accepted_corrections_not_yet_used(settings, smol):
    messages = [{"role": "user", "content": "Capital of France?"}]
    with connect(settings.db_path) as db:
        first = send_correction(db, messages, "Lyon.", "Paris.", source="compare", model=CHAT_MODEL).item
        second = send_correction(db, "Two plus two is", "five", "four", source="playground").item
        used = send_correction(db, "Old prompt", "x", "y", source="compare").item
        send_preference(db, "Pick one", "good", "bad", source="compare")
        flag_for_correction(db, "Unanswered", "a 👎 reply", source="playground")  # no correction yet
        mark_consumed(db, [used.id], "training-job:7")
    config = make_config({"source": "feedback"})
    data = load_rows(config, settings)
    assert data.row_ids == [first.id, second.id]  # feedback item ids: a finished job marks them consumed
    assert [r.messages for r in data.rows] == [messages, [{"role": "user", "content": "Two plus two is"}]]
    assert [r.target for r in data.rows] == ["Paris.", "four"]
    one, two = build_examples(config, smol, data.rows)
    assert decode(smol, one.input_ids) == render_prompt(smol, GenerationRequest.of(messages)) + "Paris." + END_OF_TURN
    assert decode(smol, two.input_ids).endswith(
        "<|im_start|>user\nTwo plus two is<|im_end|>\n<|im_start|>assistant\nfour<|im_end|>"
    )


def test_empty_feedback_says_where_corrections_come_from(settings):
    with pytest.raises(TrainDataError, match="no accepted corrections"):
        load_rows(make_config({"source": "feedback"}), settings)


@pytest.mark.skipif(not (SHARED_DATASETS / "financial_phrasebank").is_dir(), reason="../shared/datasets is missing")
def test_real_phrasebank_file_500_rows_formats_fast(settings, smol):
    path = SHARED_DATASETS / "financial_phrasebank" / "sentences_allagree.jsonl"
    config = make_config(
        {"source": "file", "file": str(path), "template": "financial-sentiment", "max_rows": 500}, max_length=1024
    )
    data = load_rows(config, settings)
    assert len(data.rows) == 500 and len(set(data.row_ids)) == 500
    assert {r.target for r in data.rows} == {"positive", "negative", "neutral"}
    started = time.perf_counter()
    examples = build_examples(config, smol, data.rows)
    elapsed = time.perf_counter() - started
    assert len(examples) == 500 and not any(e.truncated for e in examples)
    assert elapsed < 10, f"formatting 500 rows took {elapsed:.1f} s"


# ---- split, sampling, hash, truncation -------------------------------------------------------------------


def test_split_is_seeded_and_disjoint(settings):
    rows = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(50)]
    data = load_rows(inline(rows), settings)
    train, val = split_rows(inline(rows), data)
    again_train, again_val = split_rows(inline(rows), data)
    other_train, other_val = split_rows(inline(rows, seed=7), data)
    ids = lambda rs: [r.id for r in rs]  # noqa: E731
    assert len(val) == 5 and len(train) == 45
    assert not set(ids(train)) & set(ids(val)) and sorted(ids(train) + ids(val)) == list(range(50))
    assert (ids(train), ids(val)) == (ids(again_train), ids(again_val))
    assert ids(other_val) != ids(val)
    no_val = inline(rows, validation_fraction=0.0)
    assert split_rows(no_val, data) == (data.rows, [])


def test_max_rows_is_a_seeded_sample_and_the_hash_follows_the_content(settings):
    rows = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(30)]
    a = load_rows(inline(rows, max_rows=10), settings)
    b = load_rows(inline(rows, max_rows=10), settings)
    c = load_rows(inline(rows, max_rows=10, seed=1), settings)
    assert len(a.rows) == 10 and a.row_ids == b.row_ids == sorted(a.row_ids) and a.row_ids != c.row_ids
    assert a.data_hash == b.data_hash != c.data_hash and len(a.data_hash) == 64
    changed = [dict(r) for r in rows]
    changed[a.row_ids[0]]["completion"] = "different"
    assert load_rows(inline(changed, max_rows=10), settings).data_hash != a.data_hash
    own_ids = load_rows(inline([{"id": "r-1", "prompt": "p", "completion": "c"}]), settings)
    assert own_ids.row_ids == ["r-1"]


def test_truncation_cuts_the_prompt_start_and_keeps_the_completion(settings, smol, engine):
    long_prompt = "word " * 200
    rows = [
        {"prompt": "Short?", "completion": "Yes."},
        {"prompt": long_prompt, "completion": "Done."},
        {"prompt": "Hi", "completion": "tok " * 100},
    ]
    config = inline(rows, max_length=48)
    short, long_, huge = build_examples(config, smol, load_rows(config, settings).rows)
    assert not short.truncated and long_.truncated and huge.truncated
    assert len(long_.input_ids) == 48 and decode(smol, long_.input_ids).endswith(
        "word <|im_end|>\n<|im_start|>assistant\nDone.<|im_end|>"
    )
    assert decode(smol, long_.input_ids[long_.prompt_tokens :]) == "Done." + END_OF_TURN
    assert len(huge.input_ids) == 48 and huge.prompt_tokens == 12  # the prompt keeps a quarter of the window
    check_labels(long_)
    shown = preview(config, settings, engine, n=3)
    assert shown.truncated == 2 and "max_length=48" in shown.warnings[0]
    assert shown.token_stats["max"] > 200 and shown.token_stats["min"] < 48  # lengths before truncation


# ---- preview ------------------------------------------------------------------------------------------------


def test_preview_marks_the_trained_part_and_counts(settings, engine):
    rows = [{"prompt": f"Question {i}?", "completion": f"Answer {i}."} for i in range(10)]
    shown = preview(inline(rows, validation_fraction=0.2), settings, engine, n=2)
    assert (shown.rows, shown.train_rows, shown.validation_rows) == (10, 8, 2)
    assert len(shown.examples) == 2 and shown.format == "prompt_completion" and shown.truncated == 0
    first = shown.examples[0]
    assert [s["trained"] for s in first.segments] == [False, True]
    assert first.segments[1]["text"] == f"Answer {first.row_id}." + END_OF_TURN
    assert first.segments[0]["text"].endswith("<|im_start|>assistant\n")
    assert first.text == first.segments[0]["text"] + TRAINED_MARKERS[0] + first.segments[1]["text"] + TRAINED_MARKERS[1]
    stats = shown.token_stats
    assert stats["min"] <= stats["median"] <= stats["p95"] <= stats["max"] and stats["min"] > 10
    assert shown.data_hash == load_rows(inline(rows), settings).data_hash


# ---- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "data", "message"),
    [
        ([{"a": "x", "b": "y"}], {}, r"Cannot tell the data's format from its columns \(a, b\)"),
        ([{"prompt": "x"}], {"format": "prompt_completion"}, r"needs column\(s\) completion; the data has prompt"),
        (
            [{"prompt": "x", "completion": "y"}],
            {"format": "alpaca"},
            r"instruction, output; the data has prompt, completion",
        ),
        (
            [{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": " "}, {"prompt": "d", "completion": ""}],
            {},
            r"2 of 3 rows have an empty target \(completion\): rows 1, 2",
        ),
        ([{"messages": [{"role": "user", "content": "hi"}]}], {}, r"Row 0: the last turn must be the assistant's"),
        ([{"messages": [{"role": "robot", "content": "hi"}]}], {}, r"Row 0, turn 1: each turn needs a role"),
        ([{"messages": "not json"}], {}, r"Row 0: messages is not valid JSON"),
        ([{"q": "x", "a": "y"}], {"text_column": "q", "label_column": "missing"}, r"needs column\(s\) missing"),
        ([{"prompt": "x", "completion": "y"}], {"format": "conll"}, r"is for encoder tasks"),
    ],
)
def test_bad_rows_name_the_problem(settings, rows, data, message):
    with pytest.raises(TrainDataError, match=message):
        load_rows(inline(rows, **data), settings)


def test_empty_and_unmappable_data_name_the_columns(tmp_path, settings):
    with pytest.raises(TrainDataError, match="has no rows"):
        load_rows(inline([]), settings)
    empty = tmp_path / "empty.csv"
    empty.write_text("prompt,completion\n", encoding="utf-8")
    with pytest.raises(TrainDataError, match="Cannot read data.file: empty.csv has no rows"):
        load_rows(make_config({"source": "file", "file": str(empty)}), settings)
    save_dataset(
        settings, "wrong-cols", pd.DataFrame({"body": ["x"], "label": ["positive"]}), ColumnMapping({}, "label")
    )
    with pytest.raises(TrainDataError, match=r"needs variable\(s\) text.*columns: body, label"):
        load_rows(
            make_config({"source": "dataset", "dataset": "wrong-cols", "template": "financial-sentiment"}), settings
        )
    with pytest.raises(TrainDataError, match="No dataset named 'nope'"):
        load_rows(make_config({"source": "dataset", "dataset": "nope", "template": "financial-sentiment"}), settings)
    with pytest.raises(TrainDataError, match="data.template: No template named 'no-such-template'"):
        load_rows(
            make_config({"source": "dataset", "dataset": "builtin:arithmetic", "template": "no-such-template"}),
            settings,
        )
