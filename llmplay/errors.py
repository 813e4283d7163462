"""User-facing errors: each carries a message that says what went wrong and what to do."""

import reprlib


class LlmplayError(Exception):
    """Base class for errors whose message is meant for the user, as is."""


class UnknownModelError(LlmplayError):
    pass


class ModelLoadError(LlmplayError):
    pass


class InvalidRequestError(LlmplayError):
    """Bad parameters or input (empty prompt, out-of-range values, too long)."""


class ProviderError(LlmplayError):
    """A backend failed (endpoint unreachable, HTTP error, generation crashed)."""


# Bounded reprs of nested values: a few items per level, a few levels deep.
_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxdict, _repr.maxlist, _repr.maxtuple, _repr.maxset = 3, 4, 6, 6, 6
_repr.maxstring = _repr.maxother = 40


def short(value, limit: int = 80) -> str:
    """A user's value for a message, cut to about ``limit`` characters: an error must never echo a megabyte
    back, nor spend seconds building the text of a huge value."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * limit:
        # str() of a huge int is slow (and refused past 4300 digits); its size is what matters here.
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    if isinstance(value, str):
        text = repr(value[:limit])
        return text if len(value) <= limit else text[:-1] + "…" + text[-1]
    text = _repr.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_list(values, limit: int = 5) -> str:
    """Up to ``limit`` user values, each cut (``short``), and how many more there were."""
    values = list(values)
    shown = ", ".join(
        v if isinstance(v, str) and v.isidentifier() and len(v) <= 40 else short(v, 40) for v in values[:limit]
    )
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")
