"""The registry the training methods and tasks share: a name -> plug-in table filled by a decorator.

After peft's ``register_peft_method``: each plug-in is a class with a ``name`` whose module registers it at
import; ``methods/__init__.py`` and ``tasks/__init__.py`` import their modules in one list, so that list is the
one place a new method or task is added.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Generic, TypeVar

from llmplay.errors import LlmplayError

T = TypeVar("T")


class UnknownPluginError(LlmplayError):
    """A method or task name nobody registered; the message lists the known ones."""


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind  # "training method", "training task": how messages name an entry
        self._entries: dict[str, T] = {}

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: add one instance of ``cls`` under ``cls.name``."""
        name = getattr(cls, "name", "")
        if not name:
            raise ValueError(f"a {self.kind} needs a name: {cls.__name__}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = cls()
        return cls

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            known = ", ".join(self._entries)
            raise UnknownPluginError(f"Unknown {self.kind} {str(name)[:40]!r}; known: {known}.") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def all(self) -> list[T]:
        return list(self._entries.values())

    def option_classes(self) -> list[type]:
        """The dataclasses of config fields the entries declare, in registration order (no duplicates)."""
        out: list[type] = []
        for entry in self._entries.values():
            options = getattr(entry, "options", None)
            if options is not None and options not in out:
                out.append(options)
        return out

    def option_fields(self) -> dict[str, list[str]]:
        """entry name -> the config fields it owns."""
        return {n: [f.name for f in fields(e.options)] if e.options else [] for n, e in self._entries.items()}
