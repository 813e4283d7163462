"""The one YAML loader for files users write (templates, eval configs, the models file).

Safe types only, and limits enforced while the text is parsed, before any Python object is built:
- no anchors or aliases (``&a`` / ``*a``): a few hundred bytes of nested aliases ("billion laughs") expand
  to hundreds of megabytes once constructed; llmplay's files never need them;
- at most MAX_CHARS characters and MAX_DEPTH levels of nesting (the composer recurses per level);
- integers of at most MAX_INT_DIGITS digits (Python refuses to build ones past 4300 with a ValueError).

Every refusal is a ``yaml.MarkedYAMLError`` (with the line and column where there is one), so callers
report it like any other YAML mistake.
"""

from __future__ import annotations

from pathlib import Path

import yaml

MAX_CHARS = 1_000_000
MAX_DEPTH = 64
MAX_INT_DIGITS = 100


class YamlLimitError(yaml.MarkedYAMLError):
    """The text may be valid YAML, but it is beyond what llmplay reads."""


class _Loader(yaml.SafeLoader):
    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
            problem = "anchors and aliases (&name, *name) are not supported: write the value out in full"
            raise YamlLimitError(None, None, problem, event.start_mark)
        if self._depth >= MAX_DEPTH:
            raise YamlLimitError(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_int(loader: _Loader, node: yaml.ScalarNode):
    if len(node.value) > MAX_INT_DIGITS:
        raise YamlLimitError(None, None, f"a number with more than {MAX_INT_DIGITS} digits", node.start_mark)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load(text: str, max_chars: int = MAX_CHARS):
    """The plain data (dicts, lists, text, numbers, ...) of one YAML document; YAMLError if it is not one."""
    if len(text) > max_chars:
        raise YamlLimitError(problem=f"the text is too long ({len(text):,} characters; the limit is {max_chars:,})")
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def load_file(path: Path | str, max_chars: int = MAX_CHARS):
    """``load`` of a UTF-8 file, reading no more of it than the limit allows (FileNotFoundError if missing)."""
    with open(path, encoding="utf-8") as f:
        text = f.read(max_chars + 1)
    if len(text) > max_chars:
        raise YamlLimitError(problem=f"{path} is too long to read (over {max_chars:,} characters)")
    return load(text, max_chars)


def load_config(path: Path, what: str, keys: str) -> dict:
    """A command's YAML config file as a mapping; every way it can be wrong is an InvalidRequestError naming
    ``path`` (``what``: "the run", "the search"; ``keys``: the top-level keys a mapping would have)."""
    from llmplay.errors import InvalidRequestError

    path = Path(path)
    if path.is_dir():
        raise InvalidRequestError(f"{path} is a folder; give {what}'s YAML file.")
    try:
        data = load_file(path)
    except FileNotFoundError:
        raise InvalidRequestError(f"No config file at {path}.") from None
    except UnicodeDecodeError:
        raise InvalidRequestError(f"{path} is not a text file (YAML, UTF-8).") from None
    except OSError as exc:
        raise InvalidRequestError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except RecursionError:
        raise InvalidRequestError(f"{path} is nested too deeply to be a {what.split()[-1]} config.") from None
    except yaml.YAMLError as exc:
        raise InvalidRequestError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError(f"{path} must be a YAML mapping ({keys}, ...).")
    return data
