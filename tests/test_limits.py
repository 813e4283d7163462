"""Hardening (#9): YAML alias bombs, stop strings without a length limit, numbers without ranges.

One test per defect, then the table test: every numeric parameter of generation, evaluation and comparison
(llmplay.limits.LIMITS) at its bounds and just past them, through the engine's check, an evaluation config
and the `llmplay` command; each refused past the bound with a message that names it. The UI API's half of
the table is in tests/ui/test_limits_ui.py.
"""

from __future__ import annotations

import re
import time

import pytest
import yaml

from llmplay.cli import main
from llmplay.engine import GenerationParams
from llmplay.errors import InvalidRequestError, LlmplayError, short
from llmplay.evaluation.cli import _read_config
from llmplay.evaluation.config import RunConfig
from llmplay.limits import LIMITS, MAX_STOP_CHARS, bounds, check_number, check_stop
from llmplay.models.catalog import Catalog
from llmplay.templates import TemplateError, TemplateLibrary, fill_values, parse_template
from llmplay.templates.versions import parse_ref
from llmplay.yamlsafe import YamlLimitError, load
from tests.conftest import CHAT_MODEL

# "Billion laughs": each level repeats the one before nine times. Built, ``body`` would be 9**7 "lol"s
# (a 33 MB string once str()-ed into the template, and its problems).
LEVELS = "\n".join(
    f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]"
    if i
    else 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
    for i in range(7)
)
BOMB = f"name: bomb\ntask: generation\nbody: *l6\n{LEVELS}\n"

GENERATION = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed")
EVALUATION = ("sample", "sample_seed", "template_version")


def past(name: str, settings=None) -> tuple:
    """The values just past each end of the parameter's range (an open low end: the end itself)."""
    low, high = bounds(name, settings)
    step = 1 if LIMITS[name].kind is int else 0.01
    return (low if LIMITS[name].low_open else low - step), high + step


def at(name: str, settings=None) -> tuple:
    low, high = bounds(name, settings)
    return (1e-6 if LIMITS[name].low_open else low), high


# ---- defect 2: YAML alias bombs ------------------------------------------------------------------------
def test_an_alias_bomb_template_is_refused_at_once_with_a_short_message():
    started = time.perf_counter()
    with pytest.raises(TemplateError) as info:
        parse_template(BOMB, "bomb.yaml")
    assert time.perf_counter() - started < 1.0
    message = str(info.value)
    assert "anchors and aliases" in message and "line" in message, message
    assert len(message) < 600, f"a {len(message):,}-character message"


def test_every_user_yaml_refuses_aliases(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("dataset: &d x\ntemplates: [*d]\nmodels: [m]\n", encoding="utf-8")
    with pytest.raises(InvalidRequestError, match="anchors and aliases"):
        _read_config(config)
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  - &m {name: a, source: hub, location: org/a}\n  - *m\n", encoding="utf-8")
    with pytest.raises(LlmplayError, match="anchors and aliases"):
        Catalog(models)


def test_the_loader_bounds_size_nesting_and_number_length():
    assert load("a: [1, {b: two}]\n") == {"a": [1, {"b": "two"}]}
    for text, message in [
        ("x" * 1_000_001, "too long"),
        ("[" * 200 + "]" * 200, "nested more than"),
        ("n: " + "9" * 5000, "more than 100 digits"),
    ]:
        with pytest.raises(YamlLimitError, match=message):
            load(text)
    with pytest.raises(yaml.YAMLError):
        load("!!python/object:os.system x")


def test_messages_cut_long_user_values():
    with pytest.raises(TemplateError) as info:
        parse_template("name: ok\ntask: " + "t" * 100_000 + "\nbody: hi\n")
    assert "unknown task" in str(info.value) and len(str(info.value)) < 400
    with pytest.raises(InvalidRequestError) as info:
        RunConfig.from_dict({"dataset": "d", "columns": ["c" * 100_000]})
    assert "A column must be a mapping" in str(info.value) and len(str(info.value)) < 300
    assert short(10**5000) == "a number of about 5001 digits"  # str() of it would raise, past 4300 digits


def test_template_names_and_values_are_cut_in_messages(tmp_path):
    library = TemplateLibrary(tmp_path / "prompts", tmp_path / "db.sqlite")
    with pytest.raises(LlmplayError) as info:
        library.read_text("N" * 100_000)
    assert "is not a template name" in str(info.value) and len(str(info.value)) < 200
    template = parse_template("name: t\ntask: generation\nvariables: [{name: xs, default: []}]\nbody: '{{ xs }}'\n")
    values = {"k" * 100_000: 1, **{f"v{i}": 1 for i in range(1000)}, "xs": "[" * 100_000}
    with pytest.raises(TemplateError) as info:
        fill_values(template, values)
    assert "unknown variable" in str(info.value) and "expects a JSON list" in str(info.value)
    assert len(str(info.value)) < 1500, f"a {len(str(info.value)):,}-character message"


# ---- defect 3: stop strings without a length limit ---------------------------------------------------------
def test_a_long_stop_string_is_refused_before_any_work(engine):
    with pytest.raises(InvalidRequestError, match=f"at most {MAX_STOP_CHARS} characters"):
        GenerationParams(stop=("x" * 1_000_000,)).validate()
    with pytest.raises(InvalidRequestError, match="at most 400 characters in all"):
        check_stop(["y" * MAX_STOP_CHARS] * 5)
    engine.models.get(engine.catalog.get(CHAT_MODEL))  # loaded: what is timed is the request alone
    started = time.perf_counter()
    [result] = engine.generate(CHAT_MODEL, ["Hi"], GenerationParams(max_new_tokens=2, stop=("z" * 10_000,)))
    assert result.error and f"at most {MAX_STOP_CHARS} characters" in result.error and len(result.error) < 200
    assert time.perf_counter() - started < 2.0


def test_one_stop_text_is_one_stop_string_not_its_characters():
    assert GenerationParams(stop="abc").stop == ("abc",)
    config = RunConfig.from_dict({"dataset": "d", "templates": ["t"], "models": ["m"], "params": {"stop": "abc"}})
    assert config.columns[0].params.stop == ("abc",)


# ---- defect 4: numbers without ranges ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("seed", 2**70, "seed must be between 0 and 4294967295"),
        ("seed", -1, "seed must be between 0 and"),
        ("row", 10**30, "row must be between 0 and"),
        ("template_version", "9" * 40, "template_version must be between 1 and"),
        ("sample_seed", -1, "sample_seed must be between 0 and"),
        ("max_new_tokens", 1.5, "max_new_tokens must be a whole number"),
        ("max_new_tokens", 0, "max_new_tokens must be between 1 and 2048"),
        ("max_new_tokens", True, "max_new_tokens must be a whole number"),
        ("temperature", float("nan"), "temperature must be a number"),
        ("top_k", "abc", "got the text 'abc'"),
    ],
)
def test_numbers_out_of_range_or_of_the_wrong_type_are_refused_by_name(name, value, message):
    with pytest.raises(InvalidRequestError, match=message):
        check_number(name, value)


def test_numbers_are_read_not_coerced():
    assert check_number("max_new_tokens", "4") == 4 and check_number("max_new_tokens", 4.0) == 4
    assert check_number("temperature", " 0.7 ") == 0.7 and check_number("seed", "", blank=None) is None
    with pytest.raises(InvalidRequestError, match="got the text '4'"):  # the engine's own check takes no text
        GenerationParams(max_new_tokens="4").validate()
    with pytest.raises(InvalidRequestError, match="template version must be between 1 and 2147483647"):
        parse_ref("financial-sentiment@v" + "9" * 30)
    config = RunConfig.from_dict(
        {"dataset": "d", "templates": ["t"], "models": ["m"], "params": {"max_new_tokens": "4"}, "sample": "3"}
    )
    assert config.columns[0].params.max_new_tokens == 4 and config.sample == 3


def test_the_engine_generates_at_the_extremes_of_every_range(engine):
    high = {n: bounds(n)[1] for n in GENERATION if n != "max_new_tokens"}
    low = {n: at(n)[0] for n in GENERATION if n not in ("max_new_tokens", "temperature")}
    for params in (GenerationParams(max_new_tokens=2, **high), GenerationParams(max_new_tokens=1, **low)):
        [result] = engine.generate(CHAT_MODEL, ["Hi"], params)
        assert result.error is None and result.completion_tokens >= 1, (params, result.error)


# ---- the table: every parameter at its bounds and just past them -----------------------------------------------
@pytest.mark.parametrize("name", GENERATION)
def test_generation_parameters_at_and_past_their_bounds(name):
    for value in at(name):
        GenerationParams(**{name: value}).validate()
    for value in past(name):
        with pytest.raises(InvalidRequestError, match=f"^{name} must be"):
            GenerationParams(**{name: value}).validate()


@pytest.mark.parametrize("name", GENERATION + EVALUATION)
def test_evaluation_config_numbers_at_and_past_their_bounds(name):
    def config(value) -> RunConfig:
        data = {"dataset": "d", "templates": ["t"], "models": ["m"]}
        if name in GENERATION:
            data["params"] = {name: value}
        elif name == "template_version":
            data = {"dataset": "d", "columns": [{"template": "t", "model": "m", "template_version": value}]}
        else:
            data["sample" if name == "sample" else "seed"] = value
        return RunConfig.from_dict(data)

    label = {"sample_seed": "seed (of the sample)"}.get(name, name)
    for value in at(name):
        config(value)
    for value in past(name):
        with pytest.raises(InvalidRequestError, match=rf"{re.escape(label)} must be"):
            config(value)


FLAGS = {n: "--" + n.replace("_", "-") for n in GENERATION}


@pytest.fixture()
def cli_env(monkeypatch, tmp_path, model_cache_dir, engine):
    engine.models.get(engine.catalog.get(CHAT_MODEL))  # the converted-model cache exists before the command runs
    monkeypatch.setenv("LLMPLAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LLMPLAY_CACHE_DIR", str(model_cache_dir))
    monkeypatch.setenv("LLMPLAY_MAX_NEW_TOKENS", "2")  # the setting is the bound: at it, generation stays short
    from llmplay.settings import Settings

    return Settings.from_env()


@pytest.mark.parametrize("name", GENERATION)
def test_the_command_refuses_each_flag_past_its_bounds(cli_env, capsys, name):
    for value in past(name, cli_env):
        code = main(["generate", "-m", CHAT_MODEL, FLAGS[name], str(value), "Hi"])
        err = capsys.readouterr().err
        assert code == 2 and f"error: {name} must be" in err, (value, code, err)


def test_the_command_generates_at_every_flag_bound(cli_env, capsys):
    for end in (0, 1):
        flags = [arg for name in GENERATION for arg in (FLAGS[name], str(at(name, cli_env)[end]))]
        code = main(["generate", "-m", CHAT_MODEL, "--json", *flags, "Hi"])
        captured = capsys.readouterr()
        assert code == 0, (flags, captured.err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diff", "financial-sentiment", "0"], "old version must be between 1 and"),
        (["diff", "financial-sentiment", "1", str(10**30)], "new version must be between 1 and"),
        (["restore", "financial-sentiment", "1.5"], "version must be a whole number"),
        (["render", "financial-sentiment", "--max-new-tokens", "3"], "max_new_tokens must be between 1 and 2"),
    ],
)
def test_the_templates_command_refuses_numbers_past_their_bounds(cli_env, capsys, args, message):
    from tests.conftest import ROOT

    code = main(["templates", "--prompts-dir", str(ROOT / "prompts"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err, (code, err)
