"""Marking Python callables that sample, so a re-roll knows a re-run can differ.

A function agent or verifier is deterministic unless it says otherwise: re-running
it on the same input gives the same output, so re-rolling a team made only of such
functions would only repeat the recorded run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__mascope_samples__"


def sampling(fn: F) -> F:
    """Mark `fn` (a function agent or verifier) as drawing random choices, so re-rolls re-sample it."""
    setattr(fn, _MARK, True)
    return fn


def samples(fn: Callable[..., Any] | None) -> bool:
    """Whether `fn` was marked with `sampling`."""
    return bool(getattr(fn, _MARK, False))


__all__ = ["samples", "sampling"]
