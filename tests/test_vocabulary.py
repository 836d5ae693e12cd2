"""The strings that cross sub-packages are the vocabulary's, wherever they are styled or listed."""

from __future__ import annotations

from mascope import _vocabulary as vocabulary
from mascope._style import STATUS_STYLE
from mascope.cli import _render
from mascope.traces import RUN_STATUSES
from mascope.tui import _format


def test_statuses_and_kinds_shown_in_colour_are_real_ones() -> None:
    # A misspelt key would leave that status or kind uncoloured, silently.
    assert set(STATUS_STYLE) <= set(vocabulary.RUN_STATUSES)
    assert set(_render._KIND_STYLE) <= set(vocabulary.STEP_KINDS)
    assert set(_format._KIND_STYLE) <= set(vocabulary.STEP_KINDS)


def test_the_store_lists_the_vocabulary_statuses() -> None:
    assert RUN_STATUSES == vocabulary.RUN_STATUSES
    assert vocabulary.event_data("selection", chosen=1) == {"event": "selection", "chosen": 1}
    assert vocabulary.is_event("event", {"event": "resume"}, "resume")
    assert not vocabulary.is_event("message", {"event": "resume"}, "resume")
