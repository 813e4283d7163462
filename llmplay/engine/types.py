"""Plain data that flows through every provider: requests in, results and stream events out.

Per-row failures are data (``GenerationResult.error``), not exceptions, so that a batch or a
comparison grid with one bad row still returns every other row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from llmplay.limits import REQUIRED, check_number, check_stop

FinishReason = Literal["stop", "length", "error", "cancelled"]


@dataclass(frozen=True)
class GenerationParams:
    """Decoding options. ``temperature == 0`` means greedy decoding."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = no top-k filtering
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # Constrained decoding (local models, engine/constrained.py): only replies valid against this JSON Schema
    # (its JSON text) can be generated. None: free decoding.
    json_schema: str | None = None

    def __post_init__(self) -> None:
        # One text is one stop string, not its characters; anything else validate() refuses.
        stop = (self.stop,) if isinstance(self.stop, str) else self.stop
        if isinstance(stop, list | tuple):
            stop = tuple(s for s in stop if s != "")
        object.__setattr__(self, "stop", stop or ())
        for name in ("temperature", "top_p", "repetition_penalty"):  # 2 means 2.0 (transformers wants floats)
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def validate(self, max_new_tokens_limit: int = 2048) -> None:
        """Raise InvalidRequestError with a message a user can act on (ranges: llmplay.limits)."""
        for name in ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed"):
            blank = None if name == "seed" else REQUIRED  # no seed: a fresh one
            high = max_new_tokens_limit if name == "max_new_tokens" else None
            check_number(name, getattr(self, name), high=high, blank=blank, exact=True)
        check_stop(self.stop)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        if self.json_schema is None:  # absent, so the cache keys of free decoding stay as they were
            del d["json_schema"]
        return d


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt: either chat ``messages`` (chat models) or raw ``prompt`` text (any model).

    For a chat model, a raw prompt is sent as a single user message.
    """

    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    # Tools offered to a chat model (OpenAI's function format, engine/tools.py); None: no tools. Not hashed.
    tools: tuple[dict, ...] | None = field(default=None, hash=False)

    @classmethod
    def of(
        cls, prompt_or_messages, params: GenerationParams | None = None, tools: tuple[dict, ...] | None = None
    ) -> GenerationRequest:
        params = params or GenerationParams()
        if isinstance(prompt_or_messages, str):
            return cls(prompt=prompt_or_messages, params=params, tools=tuple(tools) if tools else None)
        msgs = tuple(m if isinstance(m, Message) else Message(m["role"], m["content"]) for m in prompt_or_messages)
        return cls(messages=msgs, params=params, tools=tuple(tools) if tools else None)

    def as_messages(self) -> list[dict]:
        if self.messages is not None:
            return [{"role": m.role, "content": m.content} for m in self.messages]
        return [{"role": "user", "content": self.prompt or ""}]

    def text_length(self) -> int:
        if self.messages is not None:
            return sum(len(m.content) for m in self.messages)
        return len(self.prompt or "")

    def is_empty(self) -> bool:
        if self.messages is not None:
            return not any(m.content.strip() for m in self.messages)
        return not (self.prompt or "").strip()


@dataclass
class GenerationResult:
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: FinishReason = "stop"
    error: str | None = None
    model: str = ""
    time_to_first_token_s: float | None = None
    # Extra answer data some providers return (a classifier's per-label probabilities, a tagger's entities).
    details: dict | None = None
    # What computed the reply, e.g. "fast float16" or "transformers float32" ("" for endpoints).
    backend: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.latency_s if self.latency_s > 0 else 0.0

    @classmethod
    def failure(cls, message: str, model: str = "", latency_s: float = 0.0) -> GenerationResult:
        return cls(error=message, finish_reason="error", model=model, latency_s=latency_s)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tokens_per_s"] = round(self.tokens_per_s, 2)
        return d


@dataclass(frozen=True)
class OptionScore:
    """How likely a model finds one candidate answer (e.g. a class label) as its reply."""

    option: str
    logprob: float  # sum of the option's token log-probabilities
    tokens: int

    @property
    def logprob_per_token(self) -> float:
        return self.logprob / self.tokens


@dataclass
class StreamEvent:
    """A piece of a streamed reply. The last event has ``done=True`` and carries the full result."""

    delta: str = ""
    done: bool = False
    result: GenerationResult | None = None
    status: str | None = None  # e.g. "Loading model…" while the first load runs
