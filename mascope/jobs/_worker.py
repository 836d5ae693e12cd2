"""Who holds a claim: a worker token that says which process on which host, and
whether that process is still alive (when it is on this host)."""

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


def new_worker_id() -> str:
    """`host:pid:start/random`: unique per queue object, so two workers in one
    process (threads, tests) still claim items apart."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_proc_start(pid)}/{os.urandom(3).hex()}"


def worker_dead(worker_id: str) -> bool:
    """True only when the worker's process is known to be gone: it ran on this
    host and no process with its pid and start time exists. A worker on another
    host cannot be checked; its claim lapses with its lease."""
    process = worker_id.split("/", 1)[0]
    host, _, rest = process.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname():
        return False
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid <= 0:  # stored data: never signal a process group
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return True
    except PermissionError:
        return False
    return bool(start) and _proc_start(pid) != start
