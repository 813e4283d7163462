"""Retrieval-augmented answers: faithfulness, answer relevance and context recall on hand-made cases whose answer
is known (the real MiniLM), through the registry with intervals, routed by the scorer with each row's passages and
question, and a run's plan storing the passages each row got (what the grid shows)."""

from __future__ import annotations

import json

import pytest

from llmplay.datasets import install_builtins
from llmplay.evaluation import judge as judging
from llmplay.evaluation import rag
from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
from llmplay.evaluation.metrics.registry import builtin_registry
from llmplay.evaluation.runner import EvalRunner
from llmplay.evaluation.scorer import ColumnReplies, ScoringError, metric_inputs, needs_reference
from llmplay.templates.library import TemplateLibrary
from llmplay.templates.model import parse_template
from llmplay.templates.render import build_messages
from tests.conftest import CHAT_MODEL, ROOT

LEAVE = "Full-time staff get 27 days of annual leave plus public holidays. Five unused days carry over."
PASSWORDS = "Passwords must be at least 14 characters long. Two-factor authentication is required for email."
CANTEEN = "The canteen serves a free vegetarian lunch from 12:00 to 14:00. Breakfast costs 2 euros."


def test_a_faithful_answer_is_supported_and_an_unfaithful_one_is_not():
    contexts = [[LEAVE, PASSWORDS]] * 5
    answers = [
        "Full-time staff get 27 days of annual leave.",  # says what the passage says
        "Full-time staff get 35 days of annual leave.",  # a wrong figure
        "Employees may bring their dogs to the office on Fridays.",  # invented
        "Staff get 27 days of annual leave. The office has a swimming pool open at weekends.",  # half invented
        None,  # no answer
    ]
    result = rag.faithfulness(answers, contexts)
    assert result["per_row"] == [1.0, 0.0, 0.0, 0.5, 0.0]
    assert result["row_mean"] and result["score"] == pytest.approx(0.3) and result["unsupported"] == 3
    # the same faithful answer with no passages (or the wrong ones) is unsupported
    assert rag.faithfulness([answers[0]] * 2, [[], json.dumps([CANTEEN])])["per_row"] == [0.0, 0.0]


def test_an_off_topic_answer_is_less_relevant_than_one_that_answers():
    question = "How many days of annual leave do full-time staff get?"
    result = rag.answer_relevance(
        ["Full-time staff get 27 days of annual leave.", "The canteen serves breakfast until 9:30.", ""],
        [question] * 3,
    )
    on_topic, off_topic, empty = result["per_row"]
    assert on_topic > 0.6 and off_topic < 0.3 and empty == 0.0


def test_context_recall_drops_when_the_passages_miss_the_reference_s_fact():
    reference = "Passwords must be at least 14 characters long. Breakfast costs 2 euros."
    result = rag.context_recall([reference] * 3, [[PASSWORDS, CANTEEN], [PASSWORDS, LEAVE], [LEAVE]])
    assert result["per_row"] == [1.0, 0.5, 0.0]
    with pytest.raises(ValueError, match="row 1: context_recall needs a reference answer"):
        rag.context_recall([""], [[LEAVE]])


def test_the_metric_modules_score_every_row_with_an_interval():
    registry = builtin_registry()
    answers = ["Full-time staff get 27 days of annual leave.", "Staff get 35 days off."] * 3
    result, interval = registry.get("faithfulness").interval(answers, None, resamples=200, contexts=[[LEAVE]] * 6)
    assert result.per_row == [1.0, 0.0] * 3 and result.row_mean
    assert interval.low <= 0.5 <= interval.high and interval.n == 6
    refs = ["Breakfast costs 2 euros."] * 2
    recall, _ = registry.get("context_recall").interval(answers[:2], refs, resamples=50, contexts=[[CANTEEN], []])
    assert recall.per_row == [1.0, 0.0]
    relevance, _ = registry.get("answer_relevance").interval(answers[:1], None, resamples=50, questions=["Leave?"])
    assert len(relevance.per_row) == 1 and 0 < relevance.score <= 1


def test_the_scorer_gives_each_row_its_passages_and_question():
    template = parse_template((ROOT / "prompts" / "rag-answer.yaml").read_text())
    rows = [
        {"q": "How much does breakfast cost?", "ctx": json.dumps([CANTEEN]), "ref": "Breakfast costs 2 euros."},
        {"q": "How long must a password be?", "ctx": "", "ref": "At least 14 characters."},  # retrieved
    ]
    replies = ColumnReplies(
        template,
        texts=["Breakfast costs 2 euros.", "Passwords need 14 characters."],
        answers=["Breakfast costs 2 euros.", "Passwords need 14 characters."],
        rows=rows,
        references=[r["ref"] for r in rows],
        variables={"question": "q", "contexts": "ctx"},
    )
    preds, refs, kwargs = metric_inputs(MetricConfig("faithfulness"), replies)
    assert refs is None and kwargs["contexts"][0] == [CANTEEN]
    assert kwargs["contexts"][1][0].startswith("Passwords must be at least 14 characters long.")
    _, refs, kwargs = metric_inputs(MetricConfig("context_recall"), replies)
    assert refs == ["Breakfast costs 2 euros.", "At least 14 characters."] and len(kwargs["contexts"]) == 2
    _, _, kwargs = metric_inputs(MetricConfig("answer_relevance"), replies)
    assert kwargs["questions"] == ["How much does breakfast cost?", "How long must a password be?"]
    assert not needs_reference(MetricConfig("faithfulness")) and needs_reference(MetricConfig("context_recall"))
    plain = parse_template("name: plain\ntask: qa\nvariables: [question]\nbody: '{{ question }}'\n")
    with pytest.raises(ScoringError, match="declare a list variable 'contexts'"):
        metric_inputs(MetricConfig("faithfulness"), ColumnReplies(plain, ["x"], ["x"], [{"question": "q"}], None))


def test_a_run_s_plan_stores_the_passages_each_row_got(settings, isolated_engine):
    install_builtins(settings)
    library = TemplateLibrary.from_settings(settings, ROOT / "prompts")
    config = RunConfig(
        dataset="handbook-qa",
        columns=(ColumnConfig("rag-answer", CHAT_MODEL),),
        metrics=(MetricConfig("faithfulness"), MetricConfig("context_recall")),
    )
    plan = EvalRunner(isolated_engine, library).plan(config)
    column = "contexts · rag-answer"
    assert plan.columns[0].variables == {"question": "question", "contexts": column}
    first, given = json.loads(plan.rows[0][column]), json.loads(plan.rows[-1][column])
    assert len(first) == 3 and first[0].startswith("Full-time staff get 27 days of annual leave")
    assert given == json.loads(plan.rows[-1]["contexts"])  # a row's own passages are kept
    bad = RunConfig(dataset="handbook-qa", columns=(ColumnConfig("nowhere-rag", CHAT_MODEL),))
    library.save(
        (ROOT / "prompts" / "rag-answer.yaml")
        .read_text()
        .replace("rag-answer", "nowhere-rag")
        .replace("dataset: handbook", "dataset: no-such-docs"),
        new=True,
    )
    with pytest.raises(Exception, match="no-such-docs' is neither a saved dataset nor a built-in sample"):
        EvalRunner(isolated_engine, library).plan(bad)


@pytest.mark.parametrize("name", ["judge-faithfulness", "judge-relevance"])
def test_the_rag_judges_see_the_passages_and_question_the_answer_was_given(name):
    judge = parse_template((ROOT / "prompts" / f"{name}.yaml").read_text())
    judging.check_template(judge)  # what plan_run checks for judge: {template: judge-faithfulness}
    rag_template = parse_template((ROOT / "prompts" / "rag-answer.yaml").read_text())
    messages = build_messages(rag_template, {"question": "How much is breakfast?", "contexts": json.dumps([CANTEEN])})
    values = judging.judge_values(judge, messages, "Breakfast costs 5 euros.", "Breakfast costs 2 euros.")
    prompt = build_messages(judge, values)[-1]["content"]
    assert f"[1] {CANTEEN}" in prompt and "Breakfast costs 5 euros." in prompt
    assert judging.grade(judge, "The price is wrong.\nScore: 2") == 2
