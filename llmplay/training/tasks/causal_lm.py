"""What the causal-LM tasks share: the causal trainer (an adapter on a chat or base model)."""

from __future__ import annotations

from llmplay.training.tasks import CAUSAL, Task


class CausalLmTask(Task):
    family = CAUSAL

    def train(self, config, settings, job_dir, callbacks=(), *, output_dir=None, resume_from=None):
        from llmplay.training.causal import train_causal

        return train_causal(config, settings, job_dir, callbacks, output_dir=output_dir, resume_from=resume_from)
