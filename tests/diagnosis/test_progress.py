"""Long diagnosis commands: progress with an estimate, partial results on Ctrl-C, fast defaults."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from mascope.cli import app
from mascope.traces import TraceStore

from ..models.servers import Fault, FaultServer
from .test_batch import GOOD, fill

runner = CliRunner()
BLAME = json.dumps({"agent": "Nobody", "step": 0, "reason": "r"})


def _start(cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mascope.cli", *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_requests(server: FaultServer, n: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while len(server.requests) < n:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
        time.sleep(0.02)


def test_ctrl_c_in_eval_whowhen_prints_the_partial_table(datasets: Path) -> None:
    with FaultServer() as server:
        server.default = Fault(answer=BLAME, stall=0.5)
        proc = _start(["eval", "whowhen", str(datasets / "who_and_when"), "--limit", "5",
                       "-m", f"openai:judge@{server.url}"])  # fmt: skip
        _wait_for_requests(server, 3, proc)  # two runs attributed, the third under way
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "partial: 2 of 5 runs" in out and "Who&When algorithm-generated: 2 runs" in out
    assert "interrupted (Ctrl-C)" in err and "Traceback" not in err


def test_sigterm_in_eval_whowhen_json_keeps_the_partial_scores(datasets: Path) -> None:
    with FaultServer() as server:
        server.default = Fault(answer=BLAME, stall=0.5)
        proc = _start(["eval", "whowhen", str(datasets / "who_and_when"), "--limit", "5",
                       "-m", f"openai:judge@{server.url}", "--json"])  # fmt: skip
        _wait_for_requests(server, 2, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    data = json.loads(out)  # stdout holds the JSON only; progress went to stderr
    assert data["interrupted"] is True and data["total"] == 5
    assert data["done"] == data["scores"]["n"] == 1


def test_eval_planted_defaults_to_the_methods_without_an_llm() -> None:
    result = runner.invoke(app, ["eval", "planted", "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    methods = [a["method"] for a in data["attribution"]] + [
        x["labeller"] for x in data["labelling"]
    ]
    assert methods == ["counterfactual+reference", "rules"] and data["model"] is None
    hint = " ".join(result.stderr.split())
    assert "--methods all" in hint and "judge" in hint


def test_judge_one_run_shows_its_window_progress_off_a_terminal(tmp_path: Path) -> None:
    db = tmp_path / "one.db"
    with TraceStore(db) as store:
        (rid,) = fill(store, 1)
    with FaultServer() as server:
        server.default = Fault(answer=GOOD)
        done = subprocess.run(
            [sys.executable, "-m", "mascope.cli", "judge", rid, "--db", str(db),
             "-m", f"openai:judge@{server.url}", "--json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)
    # Not a terminal: no live redraws, one final line with the count and the estimate.
    lines = [line for line in done.stderr.splitlines() if "window" in line]
    assert len(lines) == 1 and "1/1" in lines[0] and "ETA" in lines[0]


def test_judge_all_progress_goes_to_stderr(tmp_path: Path) -> None:
    db = tmp_path / "many.db"
    with TraceStore(db) as store:
        fill(store, 3)
    with FaultServer() as server:
        server.default = Fault(answer=GOOD)
        result = runner.invoke(
            app, ["judge", "--all", "--db", str(db), "-m", f"openai:judge@{server.url}", "--json"]
        )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["judged"] == 3
    assert "3/3" in result.stderr and "ETA" in result.stderr
