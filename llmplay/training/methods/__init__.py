"""Training methods: how a job changes the weights (lora, adalora, dora, prompt_tuning, full).

One module per method, each a ``Method`` subclass registered with ``@register_method``; the import list at the
bottom is the one place a new method is added. A method declares

- ``options``: a dataclass (``kw_only``) of the config fields it owns, flat YAML keys such as ``lora_r``;
  ``TrainConfig`` is made of every method's and task's options, so old flat files keep loading;
- ``check_options``: the checks of those fields (run for every config, as the fields always exist);
- what it builds: the peft config of a causal job, the trainable encoder model, and the answers the causal
  trainer asks of it (batching, extra callbacks, notes, metrics).

Must not know: the UI, the job runner, how data is read. Heavy libraries (torch, peft) load inside the hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmplay.training.plugins import Registry

if TYPE_CHECKING:
    from llmplay.training.config import TrainConfig


class Method:
    name: str = ""
    options: type | None = None  # dataclass of this method's config fields
    peft = True  # trains a peft adapter on a frozen model (False: the model's own weights)
    causal = True  # trains causal LMs (an adapter on a chat or base model)
    encoder = False  # trains BERT-family encoders too (classification, ner, mlm)
    stackable = False  # can train a fresh adapter on a parent merged into the base (stack_on_parent)
    fast_loss = False  # the causal trainer may compute logits only where a token trains

    def check_options(self, config: TrainConfig, problems: list[str]) -> None:
        """Append what is wrong with this method's own fields."""

    def causal_peft_config(self, config: TrainConfig, model, total_steps: int, tokenizer_folder: str):
        """The peft config of a fresh adapter on the causal ``model``."""
        raise NotImplementedError(f"method {self.name} does not train causal models")

    def continue_adapter(self, peft_model, config: TrainConfig, total_steps: int) -> None:
        """Adjust a parent version's adapter loaded to train further (e.g. its step schedule)."""

    def batching(self, mode: str, notes: list[str]) -> str:
        """The causal batching mode this method can use instead of ``mode`` (a note says why it differs)."""
        return mode

    def callbacks(self) -> list[Any]:
        """Extra Trainer callbacks, run before the job's progress callbacks."""
        return []

    def notes(self, config: TrainConfig) -> list[str]:
        """Advice shown with the result (settings that usually do not suit this method)."""
        return []

    def metrics(self, model) -> dict[str, Any]:
        """Extra figures of the trained model for the result's metrics."""
        return {}

    def encoder_model(self, model, config: TrainConfig):
        """The trainable model of an encoder job built on ``model`` (the task head in place)."""
        raise NotImplementedError(f"method {self.name} does not train encoders")

    def encoder_to_save(self, model):
        """The stand-alone model an encoder job saves."""
        return model


METHODS: Registry[Method] = Registry("training method")
register_method = METHODS.register
get_method = METHODS.get

# The registered methods, in the order the Train tab offers them.
from llmplay.training.methods import lora, adalora, dora, prompt_tuning, full  # noqa: E402, F401, I001
