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


def owner_alive(owner: str | None) -> bool:
    """False when `owner` is certainly gone: empty, or a process of this host that has exited.

    A process on another host cannot be checked from here: it counts as alive,
    and its heartbeat decides.
    """
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname():
        return True
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid <= 0:  # stored data: never signal a process group
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        pass
    return not start or _proc_start(pid) == start


__all__ = ["owner_alive", "owner_token"]
