"""Who is recording a run or holding a job item, and whether they still are.

An owner is `host:pid:start` (start: the process's start time, so a reused
pid is not mistaken for the owner). On the owner's own host that is checked
directly; from any other host only the owner's heartbeat can tell (a run's
`heartbeat_at`, a job item's `claimed_at`), which is what makes liveness work
when several machines share one PostgreSQL store.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal


def _proc_start(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22 (start time), counted after the command name's closing paren.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def owner_token() -> str:
    """This process, as runs and job claims name their owner."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_proc_start(pid)}"


ProcessState = Literal["elsewhere", "unreadable", "gone", "running"]


def process_state(owner: str) -> ProcessState:
    """What this host can tell of the process an owner token names.

    `elsewhere`: it runs on another host, so only its heartbeat can tell;
    `unreadable`: the token names no pid; `gone`: it was a process of this
    host that has exited (or whose pid now belongs to another process);
    `running`: it is still there.
    """
    host, _, rest = owner.split("/", 1)[0].partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname():
        return "elsewhere"
    try:
        pid = int(pid_text)
    except ValueError:
        return "unreadable"
    if pid <= 0:  # stored data: never signal a process group
        return "unreadable"
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return "gone"
    except PermissionError:
        pass  # it exists, owned by someone else
    return "gone" if start and _proc_start(pid) != start else "running"


def owner_alive(owner: str | None) -> bool:
    """False when `owner` is certainly gone: empty, unreadable, or a process of this host that has exited.

    A process on another host cannot be checked from here: it counts as alive,
    and its heartbeat decides.
    """
    return bool(owner) and process_state(owner or "") in ("elsewhere", "running")


__all__ = ["ProcessState", "owner_alive", "owner_token", "process_state"]
