"""Closed sets the CLI needs without importing the store (keeps start-up fast)."""

from __future__ import annotations

from typing import Literal, get_args

RUN_STATUSES: tuple[str, ...] = (
    "running",
    "succeeded",
    "failed",
    "error",
    "interrupted",
    "unknown",
    "abstained",
    "paused",
)
"""`unknown`: an imported run whose outcome its source did not say; `abstained`: a run
that chose to give no answer (a calibrated strategy), neither success nor failure;
`paused`: a run waiting for a person's input (`mascope runs resume RUN_ID --input TEXT`),
not finished, neither failed nor interrupted."""
PAUSE_EVENT = "interrupt"
"""`data.event` of the `event` step that asks a person for input (the run then pauses)."""
HUMAN_INPUT_EVENT = "human_input"
"""`data.event` of a person's reply to a pause (a `message` step of the agent `human`)."""
IMPORT_FORMATS: tuple[str, ...] = ("whowhen", "mad", "jsonl")
EXPORT_FORMATS: tuple[str, ...] = ("jsonl", "otel")
RunSort = Literal["time", "team", "status", "steps", "tokens", "cost"]
"""Orders runs can be listed in (`time` is the run id: ids sort by start time)."""
RUN_SORTS: tuple[RunSort, ...] = get_args(RunSort)

HOW_TO_MAKE_ONE = (
    "make one with `mascope demo`, `mascope run TEAM.yaml --task ...` "
    "or `mascope runs import FORMAT FILE`"
)
"""Told to whoever looks for a store that is not there yet."""
