"""Closed sets the CLI needs without importing the store (keeps start-up fast)."""

from __future__ import annotations

import base64
import json
from typing import Literal, get_args

from mascope._vocabulary import RUN_STATUSES as RUN_STATUSES
from mascope._vocabulary import EventName

SCHEMA_VERSION = 6
"""Bump with a migration in `_migrations.py` whenever a table changes."""

PAUSE_EVENT: EventName = "interrupt"
"""`data.event` of the `event` step that asks a person for input (the run then pauses)."""
HUMAN_INPUT_EVENT: EventName = "human_input"
"""`data.event` of a person's reply to a pause (a `message` step of the agent `human`)."""


def pause_question(metadata: dict[str, object] | None) -> str | None:
    """What a paused run asks its person, from the run's metadata (None if not said)."""
    pause = (metadata or {}).get("pause")
    prompt = pause.get("prompt") if isinstance(pause, dict) else None
    return str(prompt) if prompt else None


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


def encode_cursor(sort: str, ascending: bool, key: object, run_id: str) -> str:
    """The opaque cursor of the page of runs after `run_id` (see `TraceStore.page_runs`)."""
    raw = json.dumps([sort, ascending, key, run_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
