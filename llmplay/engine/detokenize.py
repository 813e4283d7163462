"""Text from tokens as they arrive, at a cost that does not grow with the reply.

transformers' TextIteratorStreamer decodes everything since the last line break on every token, which
costs more than a fast decoding step once a reply runs long. Here only a short window is decoded: the
text of the tokens since the last emitted piece, minus the text they had before the new token (the
usual "prefix offset" method, which keeps a word's leading space and waits while a multi-byte character
is incomplete).
"""

from __future__ import annotations

import queue
from collections.abc import Iterator


class Detokenizer:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix = 0  # window start: tokens before it are fully emitted
        self.read = 0  # tokens up to here have been emitted

    def _text(self, start: int, end: int | None = None) -> str:
        return self.tokenizer.decode(self.ids[start:end], skip_special_tokens=True)

    def add(self, token: int) -> str:
        """The new text ``token`` completes ("" while it waits for more bytes of a character)."""
        self.ids.append(token)
        before = self._text(self.prefix, self.read)
        now = self._text(self.prefix)
        if len(now) > len(before) and not now.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return now[len(before) :]
        return ""

    def flush(self) -> str:
        """Whatever is still held back at the end of the reply."""
        before = self._text(self.prefix, self.read)
        now = self._text(self.prefix)
        self.prefix = self.read = len(self.ids)
        return now[len(before) :] if len(now) > len(before) else ""


class TokenStreamer:
    """TextIteratorStreamer's interface (``put`` / ``end`` from the decoding thread, iterate for text in the
    reading thread), with the tokenizer work done by the reader through a Detokenizer."""

    def __init__(self, tokenizer, timeout: float = 600):
        self.detokenizer = Detokenizer(tokenizer)
        self.timeout = timeout
        self._queue: queue.Queue = queue.Queue()
        self._prompt_skipped = False

    def put(self, value) -> None:
        if not self._prompt_skipped:  # the first call carries the prompt, as in transformers
            self._prompt_skipped = True
            return
        self._queue.put(value.reshape(-1).tolist())

    def end(self) -> None:
        self._queue.put(None)

    def __iter__(self) -> Iterator[str]:
        while True:
            tokens = self._queue.get(timeout=self.timeout)
            if tokens is None:
                tail = self.detokenizer.flush()
                if tail:
                    yield tail
                return
            for token in tokens:
                piece = self.detokenizer.add(token)
                if piece:
                    yield piece
