"""Stores for the TUI tests, recorded through the recorder API with pinned ids and times."""

from __future__ import annotations

import io
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from mascope.traces import TraceStore

RUN = "01JTUI000000000000000000A1"
"""A failed run: labels, a verdict that said no, an error, an attribution and two branches."""
REPLAY = "01JTUI000000000000000000A2"
"""The counterfactual replay that proved the attribution (forked at step 3)."""
FORK = "01JTUI000000000000000000A3"
"""A manual fork at step 1."""
SNAPSHOTS = Path(__file__).parent / "snapshots"


def record_fixture_runs(db: Path) -> None:
    with TraceStore(db) as s:
        for i in range(6):
            rid = s.start_run(
                team=("math", "support")[i % 2],
                task=f"easy task number {i}",
                run_id=f"01JTUI0000000000000000000{i}",
            )
            s.append_step(
                rid, agent="solver", content=f"answer {i}", input_tokens=10, output_tokens=i
            )
            s.finish_run(rid, status=("succeeded", "failed", "error")[i % 3], final_answer=str(i))
        s.start_run(team="coders", task="Write add(a, b)\nand test it", run_id=RUN)
        s.append_step(RUN, agent="planner", content="Plan: write add(a, b), then test it.")
        s.append_step(
            RUN,
            agent="coder",
            kind="tool_call",
            content="run_python",
            data={"tool": "run_python", "arguments": {"code": "add(2, 3)"}},
        )
        s.append_step(RUN, agent="coder", kind="tool_result", content="-1", data={"result": -1})
        s.append_step(
            RUN,
            agent="coder",
            content="def add(a, b):\n    return a - b",
            model="openai:gpt-4o-mini",
            input_tokens=120,
            output_tokens=30,
            latency_s=1.25,
            cost_usd=0.0002,
        )
        s.append_step(
            RUN,
            agent="checker",
            kind="verdict",
            content="FAIL: add(2, 3) gave -1",
            data={"passed": False, "score": 0.0},
        )
        s.append_step(RUN, agent="coder", kind="error", error="model timed out")
        s.finish_run(RUN, status="failed", final_answer="a - b", termination_reason="max_steps")
        s.add_annotations(
            RUN,
            [
                {"id": "01JTUI0000000000000000AN01", "mode": "FM-3.3", "present": True,
                 "annotator": "llm:judge", "evidence_steps": [4], "confidence": 0.8,
                 "rationale": "The checker passed nothing but blamed the wrong line."},
                {"id": "01JTUI0000000000000000AN02", "mode": "FM-1.3", "present": True,
                 "annotator": "rule:step-repetition", "evidence_steps": [1, 2]},
                {"id": "01JTUI0000000000000000AN03", "mode": "FM-2.4", "present": False,
                 "annotator": "llm:judge"},
            ],
        )  # fmt: skip
        s.start_run(
            team="coders", task="Write add(a, b)", run_id=FORK, parent_run_id=RUN, fork_step=1
        )
        s.copy_steps(RUN, FORK, 1)
        s.append_step(FORK, agent="coder", content="def add(a, b): return b + a")
        s.finish_run(FORK, status="failed")
        s.start_run(
            team="coders", task="Write add(a, b)", run_id=REPLAY, parent_run_id=RUN, fork_step=3
        )
        s.copy_steps(RUN, REPLAY, 3)
        s.append_step(REPLAY, agent="coder", content="def add(a, b):\n    return a + b")
        s.append_step(
            REPLAY, agent="checker", kind="verdict", content="PASS", data={"passed": True}
        )
        s.finish_run(REPLAY, status="succeeded", final_answer="a + b")
        s.add_attribution(
            RUN,
            {"id": "01JTUI0000000000000000AT01", "method": "counterfactual", "agent": "coder",
             "step_index": 3, "reason": "subtracted instead of adding", "intervention": "return a + b",
             "verified": True, "replay_run_id": REPLAY},
        )  # fmt: skip
    if "://" not in str(db):  # a server store keeps its real times
        pin_times(db)


def pin_times(db: Path) -> None:
    """Fixed timestamps, so screens do not depend on the clock."""
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE runs SET started_at = '2025-01-02 03:04:05.000000', finished_at = NULL")
        con.execute("UPDATE steps SET created_at = '2025-01-02 03:04:06.000000'")
    con.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "mascope.db"
    record_fixture_runs(path)
    return path


def screen_text(app: App[object]) -> str:
    """The screen as plain text, as a terminal would show it."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), record=True, force_terminal=True,
        color_system=None, legacy_windows=False,
    )  # fmt: skip
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def assert_snapshot(name: str, text: str) -> None:
    """Compare with tests/tui/snapshots/NAME.txt; MASCOPE_UPDATE_SNAPSHOTS=1 rewrites it."""
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("MASCOPE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text + "\n")
    assert path.exists(), f"no snapshot {path}; make it with MASCOPE_UPDATE_SNAPSHOTS=1"
    assert text + "\n" == path.read_text(), (
        f"screen differs from {path}; if the change is intended, rerun with MASCOPE_UPDATE_SNAPSHOTS=1"
    )


async def wait_until(pilot: Pilot[None], check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until `check()` holds (live updates come on a timer)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the screen did not update in time"
        await pilot.pause(0.05)


async def settle(pilot: Pilot[None]) -> None:
    """Let the app finish its reads: the screens read the store in worker threads
    and show what they read when the result comes back."""
    app = pilot.app
    for _ in range(100):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            await pilot.pause()
            if not any(w.is_running for w in app.workers):
                return
    raise AssertionError("the app kept reading")
