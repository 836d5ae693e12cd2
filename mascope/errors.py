"""mascope's exceptions.

Everything mascope raises on purpose derives from `MascopeError`. Two branches
matter to callers:

* `UserError`: the input is wrong (a malformed model string, a missing API
  key, a file that does not exist). The message says what to fix; the CLI
  prints it on one line and exits 2.
* `RuntimeFailure`: the input was fine but something outside failed (an
  endpoint that stays down, a model that cannot produce valid output).
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "ContextLengthError",
    "EndpointError",
    "ImportFormatError",
    "MascopeError",
    "ModelNotFoundError",
    "NotFoundError",
    "RuntimeFailure",
    "ScriptError",
    "StoreError",
    "StructuredOutputError",
    "SyncInAsyncError",
    "UserError",
    "did_you_mean",
]


class MascopeError(Exception):
    """Root of every error mascope raises on purpose."""


class UserError(MascopeError):
    """Bad input: the message names what to fix."""


class ConfigError(UserError):
    """A malformed setting, model string, flag or file."""


class ModelNotFoundError(UserError):
    """A model file or model name that does not exist."""


class AuthenticationError(UserError):
    """An endpoint refused the credentials (missing key, HTTP 401/403)."""


class SyncInAsyncError(UserError):
    """A sync method was called from inside a running event loop."""


class RuntimeFailure(MascopeError):
    """Something outside the caller's input failed."""


class EndpointError(RuntimeFailure):
    """A model endpoint failed after every retry, or refused the request."""

    def __init__(self, message: str, *, status_code: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.status_code = status_code
        self.attempts = attempts


class StructuredOutputError(RuntimeFailure):
    """The model's answer did not fit the requested schema, even after a repair."""

    def __init__(
        self,
        message: str,
        *,
        last_answer: str = "",
        reason: str = "",
        finish_reason: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
    ):
        super().__init__(message)
        self.last_answer = last_answer
        self.reason = reason
        """What was wrong with the last answer (for a caller's own message)."""
        self.finish_reason = finish_reason
        """`length` when the answer was cut off at max_tokens."""
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        """What the unusable answers cost (both attempts), to be recorded all the same."""


class ScriptError(RuntimeFailure):
    """A scripted model was called in a way its script did not foresee."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ` (did you mean 'x'?)` for the closest choice, or an empty string."""
    close = get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class ContextLengthError(RuntimeFailure):
    """The conversation does not fit the model's context window."""


class StoreError(UserError):
    """The trace store cannot be opened or used as asked (foreign file, newer schema)."""


class NotFoundError(UserError):
    """A run, step or other record that does not exist."""


class ImportFormatError(UserError):
    """An import file is malformed; the message names the file, record and field."""
