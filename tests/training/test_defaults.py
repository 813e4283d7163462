"""Training defaults scale with the data (llmplay/training/defaults.py): the bench's 500-row figures stay,
a newcomer's 20 rows get small batches and a loss point at every step, and explicit values always win."""

from __future__ import annotations

import yaml

from llmplay.training import defaults
from llmplay.training.config import TrainConfig

BASE = {"name": "scaled", "base_model": "smollm2-135m-instruct", "data": {"source": "rows", "rows": [{"text": "x"}]}}


def config(**values) -> TrainConfig:
    return TrainConfig.from_dict(BASE | values)


def test_the_bench_figures_stay_for_500_rows():
    resolved = defaults.resolve(config(), 500)
    assert (resolved.batch_size, resolved.epochs) == (16, 2.0)
    assert defaults.steps_for(resolved, 500) == 64  # 32 batches x 2 epochs
    assert resolved.logging_steps == 2  # ~50 loss points


def test_a_newcomers_20_rows_train_in_small_batches_with_a_point_per_step():
    resolved = defaults.resolve(config(), 18)  # 20 rows less the validation split
    assert resolved.batch_size == 4
    assert defaults.steps_for(resolved, 18) == 10
    assert resolved.logging_steps == 1
    assert [defaults.batch_size(n) for n in (1, 8, 18, 40, 64, 10_000)] == [2, 2, 4, 8, 16, 16]


def test_explicit_values_win_and_yaml_round_trips():
    resolved = defaults.resolve(config(batch_size=8, logging_steps=5), 18)
    assert (resolved.batch_size, resolved.logging_steps) == (8, 5)
    text = yaml.safe_dump(config().to_dict())
    again = TrainConfig.from_dict(yaml.safe_load(text))
    assert again.batch_size is None and again.logging_steps is None  # still scaled in the job's own YAML
    assert "scaled to the data" in defaults.describe(config(), 18)
    assert "scaled" not in defaults.describe(config(batch_size=8, logging_steps=1), 18)
