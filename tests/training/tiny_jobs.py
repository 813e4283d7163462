"""Helpers for the causal training tests: tiny jobs on the real SmolLM2 (a few rows, a few steps, short rows)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import CHAT_MODEL

# Eight rows a 135M model learns within a few steps at a high learning rate.
TINY_ROWS = [
    {"prompt": f"Is '{word}' good or bad? One word.", "completion": label}
    for word, label in [
        ("great", "good"),
        ("awful", "bad"),
        ("lovely", "good"),
        ("terrible", "bad"),
        ("fine", "good"),
        ("horrid", "bad"),
        ("superb", "good"),
        ("dreadful", "bad"),
    ]
]


def tiny_config(name: str = "tiny", **overrides) -> dict:
    """A job that trains in seconds: LoRA r=4 on q/v, batches of 4 rows of ~40 tokens, fp32 (no bf16 noise)."""
    config = {
        "name": name,
        "base_model": CHAT_MODEL,
        "method": "lora",
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "target_modules": ["q_proj", "v_proj"],
        "max_steps": 3,
        "batch_size": 4,
        "max_length": 64,
        "logging_steps": 1,
        "learning_rate": 2e-3,
        "warmup_ratio": 0.0,
        "bf16": "false",
        "data": {"source": "rows", "rows": TINY_ROWS, "validation_fraction": 0.25},
    }
    data = overrides.pop("data", None)
    config.update(overrides)
    if data:
        config["data"] = {**config["data"], **data}
    return config


def write_config(folder: Path, config: dict) -> Path:
    path = Path(folder) / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def entry_env(settings) -> dict[str, str]:
    """The environment a job process reads its settings from (as jobs.py sets it)."""
    from llmplay.training.jobs import settings_env

    return settings_env(settings, Path("prompts").resolve())
