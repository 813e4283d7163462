"""Exit codes shared by every `llmplay` command, so a CI job can tell a failed check from a broken setup."""

OK = 0
CHECK_FAILED = 1  # the command worked and what it checked did not pass: an eval threshold, an invalid template
BAD_INPUT = 2  # usage, flags, config, data or model name are wrong: fix the call (argparse's own code, too)
RUN_FAILED = 3  # the work itself failed: a model did not load or generate, a run failed or was cancelled
INTERRUPTED = 130  # Ctrl-C


def for_error(exc: Exception) -> int:
    """The code for a user-facing error: a model or backend that failed is RUN_FAILED, the rest BAD_INPUT."""
    from llmplay.errors import ModelLoadError, ProviderError

    return RUN_FAILED if isinstance(exc, ModelLoadError | ProviderError) else BAD_INPUT
