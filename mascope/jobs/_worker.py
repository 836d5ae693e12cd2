"""Who holds a claim: a worker token that says which process on which host, and
whether that process is still alive (when it is on this host)."""

from __future__ import annotations

import os

from mascope.traces._owners import owner_token, process_state


def new_worker_id() -> str:
    """`host:pid:start/random`: unique per queue object, so two workers in one
    process (threads, tests) still claim items apart."""
    return f"{owner_token()}/{os.urandom(3).hex()}"


def worker_dead(worker_id: str) -> bool:
    """True only when the worker's process is known to be gone: it ran on this
    host and no process with its pid and start time exists. A worker on another
    host cannot be checked; its claim lapses with its lease."""
    return process_state(worker_id) == "gone"
