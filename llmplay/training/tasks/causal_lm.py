"""What the causal-LM tasks share: the causal trainer (an adapter on a chat or base model)."""

from __future__ import annotations

from llmplay.training.tasks import CAUSAL, Task, a_kind


class CausalLmTask(Task):
    family = CAUSAL

    def check_model(self, config, kind):
        if kind not in ("chat", "base"):
            return (
                f"Task {self.name!r} trains a causal language model; {config.base_model!r} is {a_kind(kind)} model. "
                "Pick a chat or base model, or an encoder task."
            )
        return None

    def check_data(self, config, settings):
        from llmplay.training.data import load_rows, split_rows

        split_rows(config, load_rows(config, settings))

    def train(self, config, settings, job_dir, callbacks=(), *, output_dir=None, resume_from=None):
        from llmplay.training.causal import train_causal

        return train_causal(config, settings, job_dir, callbacks, output_dir=output_dir, resume_from=resume_from)
