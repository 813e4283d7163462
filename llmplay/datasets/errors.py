"""The one error of the datasets package: its message says what to fix."""

from llmplay.errors import LlmplayError


class DatasetError(LlmplayError):
    """An upload or dataset operation failed; the message says what to fix."""
