"""The parts of prompt optimisation that need no model: the config, the splits, the candidates, the rungs."""

from __future__ import annotations

import pytest

from llmplay.errors import InvalidRequestError
from llmplay.optimize import candidates as space
from llmplay.optimize.config import OptimizeConfig
from llmplay.optimize.search import rung_sizes, survivors
from llmplay.optimize.splits import make_splits
from llmplay.templates.model import parse_template
from llmplay.templates.render import build_messages
from tests.conftest import ROOT

BASE = {"template": "financial-sentiment", "dataset": "fpb", "model": "smollm2-135m-instruct"}


def _rows(n: int) -> list[dict]:
    labels = ("positive", "negative", "neutral")
    return [{"text": f"sentence {i}", "label": labels[i % 3]} for i in range(n)]


def _start():
    return parse_template((ROOT / "prompts" / "financial-sentiment.yaml").read_text(encoding="utf-8"))


# ---- config --------------------------------------------------------------------------------------------------
def test_config_reads_the_yaml_groups():
    config = OptimizeConfig.from_dict(
        {
            **BASE,
            "seed": "3",
            "splits": {"pool": 20, "dev": "30", "test": 30},
            "budget": {"calls": 500, "minutes": 2.5},
            "params": {"max_new_tokens": 4},
            "search": {"answer_modes": "likelihood", "few_shot": False},
        }
    )
    assert (config.seed, config.pool, config.dev, config.test) == (3, 20, 30, 30)
    assert (config.budget_calls, config.budget_minutes, config.max_new_tokens) == (500, 2.5, 4)
    assert config.answer_modes == ("likelihood",) and config.few_shot is False
    assert "pool 20 / dev 30 / test 30" in config.settings_text() and "500 calls" in config.settings_text()


@pytest.mark.parametrize(
    "extra, says",
    [
        ({"budget": {"calls": 0}}, "budget.calls is 0"),
        ({"budget": {"minutes": 0}}, "budget.minutes is 0"),
        ({"budget": {"calls": -5}}, "budget.calls must be a positive number"),
        ({"splits": {"test": 29}}, "at least 30 rows"),
        ({"splits": {"dev": 3}}, "splits.dev must be a whole number"),
        ({"splits": {"pool": 0}}, "few_shot needs a pool"),
        ({"search": {"answer_modes": ["guess"]}}, "answer_modes must list"),
        ({"search": {"few_shot": "yes"}}, "few_shot must be true or false"),
        ({"splits": {"pool": 0}, "search": {"few_shot": False, "retrieved": True}}, "retrieved needs a pool"),
        ({"search": {"proposals": 0}}, "search.proposals must be"),
        ({"template": ""}, "'template' is required"),
    ],
)
def test_config_refuses_bad_values_with_a_message(extra, says):
    data = {**BASE}
    for key, value in extra.items():
        data[key] = value
    with pytest.raises(InvalidRequestError, match=says):
        OptimizeConfig.from_dict(data)


def test_retrieved_examples_are_on_exactly_when_there_is_a_pool_unless_said():
    assert OptimizeConfig.from_dict(BASE).retrieved is True
    no_pool = OptimizeConfig.from_dict({**BASE, "splits": {"pool": 0}, "search": {"few_shot": False}})
    assert no_pool.retrieved is False
    assert OptimizeConfig.from_dict({**BASE, "search": {"retrieved": False}}).retrieved is False
    assert "retrieved examples on" in OptimizeConfig.from_dict(BASE).settings_text()


def test_config_names_unknown_keys():
    with pytest.raises(InvalidRequestError, match="budgett"):
        OptimizeConfig.from_dict({**BASE, "budgett": 3})
    with pytest.raises(InvalidRequestError, match="Unknown key.*under 'search'"):
        OptimizeConfig.from_dict({**BASE, "search": {"fewshot": True}})
    with pytest.raises(InvalidRequestError, match="must be a mapping"):
        OptimizeConfig.from_dict({**BASE, "splits": [1, 2]})


# ---- splits --------------------------------------------------------------------------------------------------
def test_splits_are_disjoint_and_seeded():
    rows = _rows(120)
    a = make_splits(rows, ["text"], "label", 20, 30, 40, seed=7)
    assert (len(a.pool), len(a.dev), len(a.test)) == (20, 30, 40)
    assert not (set(a.pool) & set(a.dev)) and not (set(a.pool) & set(a.test)) and not (set(a.dev) & set(a.test))
    assert a == make_splits(rows, ["text"], "label", 20, 30, 40, seed=7)  # same seed, same rows
    assert a.dev != make_splits(rows, ["text"], "label", 20, 30, 40, seed=8).dev
    rest = make_splits(rows, ["text"], "label", 20, 30, None, seed=7)  # test: every row left
    assert len(rest.test) == 70 and rest.dev == a.dev


def test_splits_never_put_one_input_in_two_splits():
    rows = _rows(90) + [{"text": "sentence 5", "label": "neutral"}] * 3 + [{"text": "x", "label": ""}]
    s = make_splits(rows, ["text"], "label", 10, 20, None, seed=0)
    assert (s.duplicates, s.unlabelled) == (3, 1)
    texts = [rows[i]["text"] for i in (*s.pool, *s.dev, *s.test)]
    assert len(texts) == len(set(texts)) == 90


@pytest.mark.parametrize(
    "rows, reference, sizes, says",
    [
        ([], "label", (10, 10, 30), "has no rows"),
        (_rows(100), None, (10, 10, 30), "no reference column"),
        (_rows(60), "label", (20, 20, None), "the splits need .* at least 30"),
        (_rows(60), "label", (20, 20, 30), "has 60 usable rows"),
    ],
)
def test_splits_refuse_what_cannot_give_an_honest_test(rows, reference, sizes, says):
    with pytest.raises(InvalidRequestError, match=says):
        make_splits(rows, ["text"], reference, *sizes, seed=0)


# ---- candidates ----------------------------------------------------------------------------------------------
def test_instruction_edits_are_valid_templates_that_say_what_changed():
    start = _start()
    variants = space.instruction_variants(start)
    assert variants[0] == (start, "")
    texts = [t for _, t in variants[1:]]
    assert texts == ["label list", "output-format line", "input before the instruction",
                     "label list + output-format line + input before the instruction"]  # fmt: skip
    for template, _ in variants:
        messages = build_messages(template, {"text": "Profits rose."})
        assert messages[-1]["content"].count("Profits rose.") == 1
    labels, fmt, order, everything = (t for t, _ in variants[1:])
    assert labels.body.endswith(
        "Answer with exactly one of these labels: positive, negative, neutral.\nSentence: {{ text }}"
    )
    assert "Output format: One word, lowercase, nothing else." in fmt.body
    assert order.body.startswith("Sentence: {{ text }}\n") and order.body.endswith("positive, negative or neutral.")
    assert everything.body.startswith("Sentence: {{ text }}\n") and "Output format" in everything.body


def test_example_sets_are_bootstrapped_first_and_balanced_over_labels():
    start = _start()
    pool = _rows(12)  # labels cycle positive, negative, neutral
    correct = [row["label"] == "positive" for row in pool]  # a model that says positive to everything
    variants = space.example_variants(start, pool, correct, {"text": "text"}, "label", 4, 2, seed=0)
    assert variants[0] == (None, "") and variants[1] == ((), "no examples")
    sets = [v for v in variants[2:]]
    assert {len(e) for e, _ in sets} == {2, 4}
    four = next(e for e, _ in sets if len(e) == 4)
    assert [e.output for e in four][:3] == ["positive", "negative", "neutral"]  # one of each label first
    assert any("bootstrapped" in what and "labelled" in what for _, what in sets)


def test_candidates_start_first_fewest_changes_first_deduplicated_and_capped():
    start = _start()
    instructions = space.instruction_variants(start)
    examples = [(None, ""), ((), "no examples")]
    found, cut = space.build_candidates(start, instructions, examples, ("generate", "likelihood"), 100)
    assert found[0].template == start and found[0].changed == "start template"
    contents = [c.template.to_yaml() for c in found]
    assert len(contents) == len(set(contents)) == 5 * 2 * 2 and cut == 0
    singles = [c.changed for c in found[1:7]]
    assert "answer by likelihood over the labels" in singles and "no examples" in singles
    assert (
        all(";" not in c.changed for c in found[1:7]) and ";" in found[7].changed
    )  # one change each before any combination
    capped, cut = space.build_candidates(start, instructions, examples, ("likelihood",), 4)
    assert len(capped) == 4 and cut > 0
    assert capped[0].mode == "generate" and all(c.mode == "likelihood" for c in capped[1:])  # only the start keeps it


def test_rungs_grow_and_survivors_shrink_to_eta():
    assert rung_sizes(30, 6, 3, 10) == [10, 30]
    assert rung_sizes(150, 60, 3, 10) == [17, 50, 150]
    assert rung_sizes(30, 3, 3, 10) == [30]  # few candidates: every one on all dev rows
    assert [survivors(60, r, 3, 3) for r in range(3)] == [60, 14, 3]
    assert [survivors(6, r, 2, 3) for r in range(2)] == [6, 3]


def test_retrieved_variants_store_the_labelled_pool_and_replace_the_fixed_examples():
    start = _start()
    pool = [*_rows(9), {"text": "no answer", "label": ""}]
    found = space.retrieved_variants(start, pool, {"text": "text"}, "label", 4)
    assert [(r.k, len(r.pool)) for r, _ in found] == [(2, 9), (4, 9)]  # the row without an answer is left out
    assert found[0][1] == "2 retrieved examples per row (of 9 pool rows)"
    assert found[0][0].pool[0].values == {"text": "sentence 0"} and found[0][0].pool[0].output == "positive"
    assert space.retrieved_variants(start, pool[:1], {"text": "text"}, "label", 4) == []  # fewer rows than k
    built, _ = space.build_candidates(start, [(start, "")], [(None, ""), *found], ("generate",), 10)
    retrieved = [c for c in built if c.template.retrieve is not None]
    assert len(retrieved) == 2 and all(c.template.examples == () for c in retrieved)
    assert [c.shots for c in retrieved] == [2, 4] and built[0].shots == len(start.examples)
    # the prompt size counts k average pool rows, not the whole pool stored in the template
    assert retrieved[0].prompt_chars < retrieved[1].prompt_chars < built[0].prompt_chars + 200
