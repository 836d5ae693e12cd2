"""The TUI: time from process start to a painted screen, and memory then.

Each measurement starts `mascope tui` in a fresh process on a pseudo-terminal
(120x40), reads what it paints and stops the clock when the screen shows its
data: the runs screen's "N of 10,000 runs", the run screen's "10,000 steps".
Memory is the process's resident set (VmRSS) at that moment. Baseline, measured
the same way: a bare Textual app that shows an empty DataTable (Python start-up,
importing Textual, the first paint).

    .venv/bin/python benchmarks/bench_tui.py [--runs 5] [--big /tmp/mascope-bench-1m.db] [--write docs/benchmarks.md]

The 10,000-run / 1,000,000-step store is the one benchmarks/bench_store.py
generates (built here too if it is missing).
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fcntl import ioctl
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import machine, median, write_section
from bench_store import build_big_store

COLS, ROWS = 120, 40
_ANSI = re.compile(
    rb"\x1b(\[[0-9;?<=>$ ]*[A-Za-z~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][A-Z0-9]|[=>78])"
)

BARE_APP = """
from textual.app import App
from textual.widgets import DataTable, Static

class Bare(App[None]):
    def compose(self):
        yield Static("bare textual ready")
        yield DataTable()

Bare().run()
"""


@dataclass
class Painted:
    seconds: float
    """From just before the process was spawned to the marker on screen."""
    rss_mb: float
    then_seconds: float | None = None
    """From sending the follow-up keys to their marker (if any)."""


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wait_for(fd: int, marker: bytes, started: float, timeout: float, seen: bytearray) -> float:
    """Read the terminal until `marker` shows in its text; seconds since `started`."""
    deadline = started + timeout
    while time.perf_counter() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        seen.extend(chunk)
        if marker in _ANSI.sub(b"", bytes(seen)):
            return time.perf_counter() - started
    tail = _ANSI.sub(b"", bytes(seen))[-400:]
    raise RuntimeError(f"{marker!r} never painted within {timeout} s; last output: {tail!r}")


def paint(
    argv: Sequence[str],
    marker: str,
    *,
    then_keys: str = "",
    then_marker: str = "",
    timeout: float = 60.0,
) -> Painted:
    """Run `argv` on a fresh pseudo-terminal; time until `marker` is painted."""
    master, slave = pty.openpty()
    ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    seen = bytearray()
    try:
        seconds = _wait_for(master, marker.encode(), started, timeout, seen)
        rss = _rss_mb(proc.pid)
        then = None
        if then_keys:
            seen.clear()
            sent = time.perf_counter()
            os.write(master, then_keys.encode())
            then = _wait_for(master, then_marker.encode(), sent, timeout, seen)
        return Painted(seconds, rss, then)
    finally:
        os.write(master, b"q")
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)


def big_run_id(db: Path) -> str:
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT id FROM runs WHERE step_count = 10000 LIMIT 1").fetchone()
    finally:
        con.close()
    return str(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--big", type=Path, default=Path(tempfile.gettempdir()) / "mascope-bench-1m.db"
    )
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    n = args.runs
    if not args.big.exists():
        started = time.perf_counter()
        build_big_store(args.big)
        print(f"built {args.big} in {time.perf_counter() - started:.0f} s")
    run_id = big_run_id(args.big)
    tui = [sys.executable, "-m", "mascope.cli", "tui", "--db", str(args.big)]

    load_before = os.getloadavg()[0]
    bare = [paint([sys.executable, "-c", BARE_APP], "bare textual ready") for _ in range(n)]
    runs = [paint(tui, "of 10,000 runs", then_keys="G", then_marker="200 of 10,000 runs") for _ in range(n)]  # fmt: skip
    run = [
        paint([*tui, run_id], "10,000 steps", then_keys="G", then_marker="step 9999")
        for _ in range(n)
    ]

    load = max(load_before, os.getloadavg()[0])

    def med(xs: list[Painted], field: str) -> float:
        return median([float(getattr(x, field)) for x in xs])

    b_s, b_mb = med(bare, "seconds"), med(bare, "rss_mb")
    rows = [
        ("runs screen, first page painted (10,000 runs)", med(runs, "seconds"), med(runs, "rss_mb")),
        ("run screen of the 10,000-step run painted", med(run, "seconds"), med(run, "rss_mb")),
    ]  # fmt: skip
    for name, s, mb in rows:
        print(f"{name}: {s:.2f} s, {mb:.0f} MB (bare Textual app {b_s:.2f} s, {b_mb:.0f} MB)")
    g_runs, g_run = med(runs, "then_seconds"), med(run, "then_seconds")
    print(f"G on the runs screen (next page read and painted): {g_runs * 1e3:.0f} ms")
    print(f"G on the run screen (last of 10,000 steps painted): {g_run * 1e3:.0f} ms")

    if args.write:
        lines = [
            "## TUI",
            "",
            f"Medians of {n} runs on {machine()}, on the generated 10,000-run / 1,000,000-step store "
            "(see Trace store above). Each run starts `mascope tui` in a fresh process on a 120x40 "
            "pseudo-terminal and stops the clock when the screen shows the data; memory is the "
            "process's resident set at that moment. Baseline: a bare Textual app painting an empty "
            "DataTable, started the same way (Python start-up, importing Textual, first paint). "
            "Target: at most 1.5 times the bare app (issue 16). "
            f"The 1-minute load average reached {load:.1f} on these {os.cpu_count()} cores while this ran; "
            "other work on the machine slows both columns, the ratio less.",
            "",
            "| from process start to | mascope tui, s | bare Textual app, s | ratio | RSS, MB | bare RSS, MB |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]  # fmt: skip
        for name, s, mb in rows:
            lines.append(
                f"| {name} | {s:.2f} | {b_s:.2f} | {s / b_s:.2f} | {mb:.0f} | {b_mb:.0f} |"
            )
        lines += [
            "",
            "| key press, then painted | ms |",
            "| --- | ---: |",
            f"| `G` on the runs screen: to the last loaded run, the next page of 100 read and shown | {g_runs * 1e3:.0f} |",
            f"| `G` on the run screen: to step 9,999 of the 10,000-step run | {g_run * 1e3:.0f} |",
            "",
            "Reproduce: `.venv/bin/python benchmarks/bench_tui.py --write docs/benchmarks.md`",
        ]  # fmt: skip
        write_section(args.write, "tui", "\n".join(lines))


if __name__ == "__main__":
    main()
