"""Conversation templates: a row is a whole scripted conversation, played turn by turn.

A template with ``conversation: {messages: <variable>, replies: own|scripted}`` reads that variable as a list of
messages, ``{"role": "user" | "assistant", "content": ..., "expect": {...}}``. Each user message is one turn,
rendered through the template's body with its text as ``{{ turn }}`` (the row's other variables are there too);
each assistant message after it is the slot the model answers, optionally with the scripted reply (``content``)
and what that reply must satisfy (``expect``: see ``llmplay.evaluation.turn_checks``). A trailing user message
gets an unchecked slot.

``replies: own`` (the default) plays the conversation as a user would see it: each turn after the first follows
the model's own earlier replies. ``scripted`` follows the script's replies instead, so every turn is judged
against the same history (turns are then independent, and a slip at turn 1 cannot derail turn 2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llmplay.errors import LlmplayError, short

CONVERSATION_FIELDS = ("messages", "replies")
REPLY_MODES = ("own", "scripted")
TURN_VARIABLE = "turn"  # the body sees the user's message as {{ turn }}
MAX_TURNS = 20


@dataclass(frozen=True)
class ConversationSpec:
    messages: str  # the template variable holding the conversation
    replies: str = "own"


@dataclass(frozen=True)
class Exchange:
    """One user turn and the assistant slot after it."""

    user: str
    reply: str | None = None  # the scripted reply, if the script gives one
    expect: dict | None = None  # what the model's reply must satisfy (None: not checked)


class ConversationError(LlmplayError):
    """A row's conversation is not a usable script."""


def parse_spec(raw: Any, problems: list[str]) -> ConversationSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append("'conversation' must be a mapping: {messages: <variable>, replies: own or scripted}")
        return None
    extra = sorted(set(map(str, raw)) - set(CONVERSATION_FIELDS))
    if extra:
        problems.append(f"conversation: unknown field(s) {', '.join(extra)}; known fields: messages, replies")
    messages = raw.get("messages")
    if not isinstance(messages, str) or not messages:
        problems.append("conversation.messages must name the variable that holds the conversation")
        messages = ""
    return ConversationSpec(messages, str(raw.get("replies") or "own"))


def spec_dict(spec: ConversationSpec) -> dict:
    return {"messages": spec.messages, "replies": spec.replies}


def spec_problems(spec: ConversationSpec, declared: set[str], has_examples: bool) -> list[str]:
    problems = []
    if spec.messages and spec.messages not in declared:
        problems.append(f"conversation.messages names {short(spec.messages)}, which is not a declared variable")
    if spec.replies not in REPLY_MODES:
        problems.append(f"conversation.replies must be one of {', '.join(REPLY_MODES)}; got {short(spec.replies)}")
    if TURN_VARIABLE in declared:
        problems.append(f"'{TURN_VARIABLE}' cannot be declared in a conversation template: it is each user turn")
    if has_examples:
        problems.append("a conversation template takes no examples or retrieve: put examples in the conversation")
    return problems


def read_script(value: Any) -> list[Exchange]:
    """The exchanges of a conversation given as a list of messages (or its JSON text; plain text is one turn)."""
    if isinstance(value, str) and not value.lstrip().startswith(("[", "{")):
        value = [{"role": "user", "content": value}]  # plain text (a playground box): a one-turn conversation
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise ConversationError(
                f'the conversation must be a JSON list of messages like [{{"role": "user", "content": "Hi"}}]; '
                f"got {short(value)}"
            ) from None
    if not isinstance(value, list) or not value:
        raise ConversationError(f"the conversation must be a non-empty list of messages; got {short(value)}")
    exchanges: list[Exchange] = []
    pending: str | None = None
    for i, message in enumerate(value, 1):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise ConversationError(f"message #{i} must be a mapping with role 'user' or 'assistant'")
        extra = sorted(set(map(str, message)) - {"role", "content", "expect"})
        if extra:
            raise ConversationError(f"message #{i} has unknown field(s) {', '.join(extra)}")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise ConversationError(f"message #{i}: content must be text")
        if message["role"] == "user":
            if pending is not None:
                raise ConversationError(f"message #{i}: two user messages in a row; put an assistant turn between")
            if not (content or "").strip():
                raise ConversationError(f"message #{i}: a user message needs content")
            pending = content
            continue
        if pending is None:
            raise ConversationError(f"message #{i}: an assistant turn must follow a user message")
        expect = message.get("expect")
        if expect is not None and not isinstance(expect, dict):
            raise ConversationError(f"message #{i}: expect must be a mapping such as {{contains: refund}}")
        exchanges.append(Exchange(pending, content, expect or None))
        pending = None
    if pending is not None:
        exchanges.append(Exchange(pending))
    if len(exchanges) > MAX_TURNS:
        raise ConversationError(f"the conversation has {len(exchanges)} turns; at most {MAX_TURNS} are played")
    return exchanges


def history(exchanges: list[Exchange], replies: list[str | None], upto: int) -> list[tuple[str, str | None]]:
    """(user text, assistant text) for turns 0..upto, the last with no reply: what the model sees at turn
    ``upto``. ``replies`` are the assistant texts of the earlier turns (the model's own, or the script's)."""
    return [(e.user, replies[k] if k < upto else None) for k, e in enumerate(exchanges[: upto + 1])]


def scripted_replies(exchanges: list[Exchange], upto: int) -> list[str | None]:
    """The script's replies before turn ``upto``; a missing one is an error in scripted mode."""
    missing = [k + 1 for k, e in enumerate(exchanges[:upto]) if e.reply is None]
    if missing:
        raise ConversationError(
            f"replies: scripted needs the script's reply for every turn before the last; turn {missing[0]} has none"
        )
    return [e.reply for e in exchanges[:upto]]


def transcript(exchanges: list[Exchange], replies: list[str]) -> str:
    """The conversation as a reader sees it in the grid: each user turn and the model's reply to it."""
    blocks = []
    for k, (exchange, reply) in enumerate(zip(exchanges, replies), 1):
        blocks.append(f"[{k}] User: {exchange.user}\n[{k}] Assistant: {reply}")
    return "\n\n".join(blocks)
