"""What the encoder tasks share: the encoder trainer (a BERT-family encoder with a task head)."""

from __future__ import annotations

from llmplay.training.methods import METHODS
from llmplay.training.tasks import ENCODER, Task


class EncoderTask(Task):
    family = ENCODER

    def check(self, config, problems: list[str]) -> None:
        if config.method in METHODS.names() and not METHODS.get(config.method).encoder:
            problems.append(f"encoder task {self.name!r} supports method full (with freeze_layers) or lora")

    def train(self, config, settings, job_dir, callbacks=(), *, output_dir=None, resume_from=None):
        from llmplay.training.encoder import train_encoder

        return train_encoder(config, settings, job_dir, callbacks, output_dir=output_dir, resume_from=resume_from)
