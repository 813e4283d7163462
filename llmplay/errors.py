"""User-facing errors: each carries a message that says what went wrong and what to do."""


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
