"""Metrics on hand-made cases whose values are computed by hand (see the comments)."""

import pytest

from llmplay.evaluation.metrics import MetricRegistry, UnknownMetricError, builtin_registry, get_metric, list_metrics
from llmplay.evaluation.metrics.scoring import check, extract_number


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    # Local modules must load without any network: fail loudly if anything tries.
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("a metric tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_exact_match_normalises_whitespace_and_optionally_case():
    result = get_metric("exact_match").compute(
        [" Paris ", "paris", "Lyon  city", None], ["Paris"] * 2 + ["Lyon city"] * 2
    )
    assert result.per_row == [1.0, 0.0, 1.0, 0.0] and result.score == 0.5 and result.row_mean
    assert get_metric("exact_match").compute(["paris"], ["Paris"], ignore_case=True).score == 1.0


# refs:  pos pos pos neg neg  neu
# preds: pos pos neg neg None neu     (None = the reply had no parseable label)
REFS = ["pos", "pos", "pos", "neg", "neg", "neu"]
PREDS = ["pos", "pos", "neg", "neg", None, "neu"]


def test_accuracy_counts_unparseable_as_wrong_not_dropped():
    result = get_metric("accuracy").compute(PREDS, REFS)
    assert result.score == pytest.approx(4 / 6)  # 4 right out of all 6 rows, not out of 5 parsed
    assert result.per_row == [1, 1, 0, 1, 0, 1]
    assert result.details["unparseable"] == 1


def test_unparseable_first_row_is_accepted():
    result = get_metric("accuracy").compute([None, "pos"], ["neg", "pos"])
    assert result.per_row == [0.0, 1.0] and result.details["unparseable"] == 1


def test_macro_f1_of_a_known_confusion():
    # pos: tp2 fp0 fn1 -> 4/5; neg: tp1 fp1 fn1 (the None row) -> 2/4; neu: tp1 -> 1
    result = get_metric("macro_f1").compute(PREDS, REFS)
    assert result.details["per_class_f1"] == pytest.approx({"pos": 0.8, "neg": 0.5, "neu": 1.0})
    assert result.score == pytest.approx((0.8 + 0.5 + 1.0) / 3)
    assert result.details["unparseable"] == 1 and not result.row_mean


def test_macro_f1_interval_recomputes_the_metric_and_is_deterministic():
    metric = get_metric("macro_f1")
    result, ci = metric.interval(PREDS * 3, REFS * 3, resamples=30, seed=3)
    assert ci.estimate == pytest.approx(result.score) and ci.low <= ci.estimate <= ci.high and ci.n == 18
    assert metric.interval(PREDS * 3, REFS * 3, resamples=30, seed=3)[1] == ci


def test_row_mean_metric_interval_bootstraps_rows():
    result, ci = get_metric("accuracy").interval(PREDS, REFS, resamples=500)
    assert ci.estimate == pytest.approx(4 / 6) and ci.low < ci.estimate < ci.high


def test_seqeval_entity_f1_on_a_known_example():
    refs = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]  # entities: PER, LOC, ORG
    preds = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "O"]]  # finds PER and ORG, misses LOC
    result = get_metric("seqeval").compute(preds, refs)
    assert result.details["precision"] == pytest.approx(1.0)  # 2 of 2 predicted entities right
    assert result.details["recall"] == pytest.approx(2 / 3)  # 2 of 3 true entities found
    assert result.score == pytest.approx(0.8)  # 2PR/(P+R) = (4/3)/(5/3)
    # Per-sentence F1 (row 1: P=1, R=1/2 -> 2/3; row 2: perfect), kept for the grid; not averaged into the score.
    assert result.per_row == pytest.approx([2 / 3, 1.0]) and result.row_mean is False
    assert get_metric("entity_recall").compute(preds, refs).score == pytest.approx(2 / 3)
    assert get_metric("entity_precision").compute(preds, refs).score == pytest.approx(1.0)


def test_bleu_of_known_pairs():
    bleu = get_metric("bleu")
    assert bleu.compute(["the cat sat on the mat"], ["the cat sat on the mat"]).score == pytest.approx(100)
    # Clipped n-gram precisions 5/6, 3/5, 2/4, 1/3; equal lengths so no brevity penalty.
    result = bleu.compute(["the cat sat on the mat"], ["the cat sat on a mat"])
    assert result.score == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, abs=1e-6)


def test_chrf_perfect_is_100_and_a_miss_is_lower():
    chrf = get_metric("chrf")
    assert chrf.compute(["Der Hund bellt."], ["Der Hund bellt."]).score == pytest.approx(100)
    assert chrf.compute(["Die Katze"], ["Der Hund bellt."]).score < 30


def test_rouge_on_a_known_pair():
    # 3 shared unigrams: P = 3/3, R = 3/6 -> F1 = 2/3; bigrams: P = 2/2, R = 2/5 -> F1 = 4/7
    result = get_metric("rouge").compute(["the cat sat"], ["the cat sat on the mat"])
    assert result.details["rouge1"] == pytest.approx(2 / 3)
    assert result.details["rouge2"] == pytest.approx(4 / 7)
    assert result.score == pytest.approx(2 / 3)  # ROUGE-L: LCS "the cat sat"


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("The answer is 42.", 42),
        ("1,234", 1234),
        ("It costs $5.00", 5.0),
        ("from 3 to -7.5", -7.5),
        ("#### 1,234,567", 1234567),
        ("about .5 of it", 0.5),
        ("no digits here", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_number(text, number):
    assert extract_number(text) == number


def test_numeric_match_with_tolerance_and_numeric_references():
    result = get_metric("numeric_match").compute(
        ["So the total is $1,234.00", "x = 0.3333334", "I don't know"], [1234, "1/3 is 0.3333333", "5"]
    )
    assert result.per_row == [1.0, 1.0, 0.0] and result.details["unparseable"] == 1
    assert get_metric("numeric_match").compute(["0.5"], ["0.6"], abs_tol=0.2).score == 1.0


@pytest.mark.parametrize(
    ("output", "kind", "value", "bounds", "passed"),
    [
        ("Paris is nice", "contains", "Paris", {}, True),
        ("paris is nice", "contains", "Paris", {}, False),
        ("paris is nice", "icontains", "Paris", {}, True),
        ("order 12345", "regex", r"\d{5}", {}, True),
        ("order 12", "regex", r"\d{5}", {}, False),
        ("x", "regex", "(", {}, False),
        ('{"a": [1, 2]}', "json", None, {}, True),
        ("{'a': 1}", "json", None, {}, False),
        ("abc", "length", None, {"min_length": 1, "max_length": 3}, True),
        ("abcd", "length", None, {"max_length": 3}, False),
        ("", "length", None, {"min_length": 1}, False),
        (None, "contains", "x", {}, False),
    ],
)
def test_assertions_table(output, kind, value, bounds, passed):
    ok, reason = check(output, kind, value, **bounds)
    assert ok is passed and (reason == "") is passed


def test_assertion_metrics_report_failures():
    result = get_metric("valid_json").compute(['{"ok": true}', "not json"])
    assert result.per_row == [1.0, 0.0] and list(result.details["failures"]) == [1]
    per_row_values = get_metric("contains").compute(["a cat", "a dog"], ["cat", "cat"])
    assert per_row_values.per_row == [1.0, 0.0]
    lengths = get_metric("length").compute(["ab", "abcdef"], max_length=4)
    assert lengths.per_row == [1.0, 0.0] and "more than the maximum 4" in lengths.details["failures"][1]


def test_json_schema_checks_each_output_against_the_schema():
    schema = '{"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}}'
    result = get_metric("json_schema").compute(['{"a": 1}', '{"a": "x"}', '{"b": 2}', "nope"], value=schema)
    assert result.per_row == [1.0, 0.0, 0.0, 0.0]
    assert "schema" in result.details["failures"][1] and "not valid JSON" in result.details["failures"][3]


USER_METRIC = '''
"""A user metric: mean output length in characters."""

import datasets
import evaluate


class MeanLength(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        return {"mean_length": sum(len(p) for p in predictions) / len(predictions)}
'''


def test_user_metric_dropped_in_a_folder_is_found_and_computed(tmp_path):
    (tmp_path / "mean_length.py").write_text(USER_METRIC)
    (tmp_path / "notes.txt").write_text("not a metric")
    registry = builtin_registry()
    assert registry.load_folder(tmp_path) == ["mean_length"]
    assert "mean_length" in registry.names() and "bleu" in registry.names()
    result = registry.get("mean_length").compute(["ab", "abcd"], ["", ""])
    assert result.score == 3.0 and result.per_row is None


def test_unknown_metric_lists_the_known_ones():
    with pytest.raises(UnknownMetricError, match="unknown metric 'blue'.*bleu.*exact_match"):
        get_metric("blue")
    assert {"accuracy", "macro_f1", "seqeval", "bleu", "chrf", "rouge", "numeric_match"} <= set(list_metrics())
    assert MetricRegistry().names() == []


def test_semantic_similarity_with_the_bundled_encoder():
    # Real all-MiniLM-L6-v2 from its package: identical text ~1, a paraphrase beats an unrelated answer,
    # an unparseable answer scores 0 (counted, not dropped).
    predictions = ["The cat sat on the mat.", "A cat was sitting on the rug.", "Stock prices fell sharply.", None]
    references = ["The cat sat on the mat."] * 4
    result = get_metric("semantic_similarity").compute(predictions, references)
    same, paraphrase, unrelated, missing = result.per_row
    assert same == pytest.approx(1.0, abs=1e-4)
    assert paraphrase > 0.5 > unrelated >= 0.0
    assert missing == 0.0
    assert result.row_mean and result.score == pytest.approx(sum(result.per_row) / 4)


def test_embedder_refuses_a_generative_model():
    from llmplay.errors import ModelLoadError
    from llmplay.models.embeddings import get_embedder

    with pytest.raises(ModelLoadError, match="needs an encoder"):
        get_embedder("smollm2-135m-instruct")


def test_entity_lines_become_bio_tags_over_the_sentence_tokens():
    from llmplay.evaluation.scorer import entity_lines_to_bio

    tokens = ["Angela", "Merkel", "visited", "Berlin", "and", "met", "Angela", "in", "Berlin", "."]
    reply = "PER: Angela Merkel\nLOC: Berlin\nLOC: Berlin\nORG: Nowhere Inc\nnot an entity line"
    assert entity_lines_to_bio(reply, tokens) == [
        "B-PER", "I-PER", "O", "B-LOC", "O", "O", "O", "O", "B-LOC", "O",
    ]  # fmt: skip
    assert entity_lines_to_bio(None, tokens) == ["O"] * len(tokens)  # no answer tags nothing


def test_corpus_metric_interval_equals_the_slow_recomputation():
    """The bootstrap's fast path (the module's own _compute per resample) gives compute()'s numbers."""
    from llmplay.evaluation.stats import bootstrap_metric

    metric = get_metric("macro_f1")
    preds = ["a", "b", None, "a", "c", "b", "a", "c"]
    refs = ["a", "b", "b", "c", "c", "b", "a", "a"]
    result, fast = metric.interval(preds, refs, resamples=100, seed=1)

    def slow_score(idx):
        return metric.compute([preds[i] for i in idx], [refs[i] for i in idx]).score

    slow = bootstrap_metric(slow_score, len(preds), resamples=100, seed=1)
    assert fast.estimate == pytest.approx(result.score)
    assert (fast.low, fast.high) == pytest.approx((slow.low, slow.high))
    assert fast.low < fast.high
