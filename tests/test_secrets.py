"""No secret mascope recognises reaches a file it writes or a line it prints.

A dozen secrets of every kind are planted in a task, a tool argument, a tool
result, agent outputs, the environment and imported traces; a real team runs
through the CLI (and once in process, to scan the SQLite WAL files while they
are still open), then `runs show`, `runs list` and every export format run.
Every byte of every file in the folder, and everything printed, is scanned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from mascope.agents import TurnContext
from mascope.cli import app
from mascope.graphs import StepEvent, Team
from mascope.traces import TraceStore
from tests.reliability import tally

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

OPENAI_KEY = "sk-proj-Zq8vX2mN4pL7rT1wY6uB3cD9eF0gH5jK"
GITHUB_TOKEN = "ghp_R8kLm2Nq4Wx6Yz1Ab3Cd5Ef7Gh9Ij0KlMnOp"
AWS_KEY_ID = "AKIAIOSFODNN7QWERTYU"
BEARER = "tk_live_9a8b7c6d5e4f3a2b1c0d"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZS1zZWNyZXQifQ.c2lnbmF0dXJlLXNlY3JldC14eXo"
BASIC_AUTH = "dXNlcjpodW50ZXIyLXNlY3JldC1iYXNpYw=="
ENV_NAME, ENV_SECRET = "ACME_SERVICE_TOKEN", "acme-env-4242-zeta-omega"
TOOL_PASSWORD = "hunter2-login-pw-5151"
KWARG_KEY = "kw-9x8y7z6w5v4u3t"
SHELL_PASSWORD = "shell-pw-77aa-bb99"
SLACK_TOKEN = "xoxb-1234567890-abcdefghijklmnop"  # imported JSONL
JSONL_PASSWORD = "imported-pw-31337-xyz"  # imported JSONL, secret-named field in text
GOOGLE_KEY = "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"  # imported Who&When
HF_TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"  # imported MAD
ANTHROPIC_KEY = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv"  # imported JSONL: team and agent names
PLANTED = [
    OPENAI_KEY, GITHUB_TOKEN, AWS_KEY_ID, BEARER, JWT, BASIC_AUTH, ENV_SECRET, TOOL_PASSWORD,
    KWARG_KEY, SHELL_PASSWORD, SLACK_TOKEN, JSONL_PASSWORD, GOOGLE_KEY, HF_TOKEN, ANTHROPIC_KEY,
]  # fmt: skip

TASK = (
    f"Deploy with OPENAI_API_KEY {OPENAI_KEY} and push with {GITHUB_TOKEN}; "
    "log in as alice and report the config."
)

TEAM_YAML = """
name: secrets
agents:
  - name: caller
    role: logs in and reads the config
    function: tests.test_secrets:caller
    tools: [login, fetch_config]
  - name: reporter
    role: reports what the caller found
    function: tests.test_secrets:reporter
tools:
  login: tests.test_secrets:login
  fetch_config: tests.test_secrets:fetch_config
topology:
  kind: pipeline
  stages: [caller, reporter]
"""


# -- the team's functions (imported by name from the YAML) ------------------------------


def login(user: str, password: str) -> str:
    """Pretends to log in."""
    return f"welcome {user}"


def fetch_config() -> str:
    """A tool result that holds credentials."""
    return f"aws_access_key_id {AWS_KEY_ID}\nsession {JWT}\n"


async def caller(ctx: TurnContext) -> str:
    await ctx.call_tool("login", user="alice", password=TOOL_PASSWORD)
    config = await ctx.call_tool("fetch_config")
    # The output repeats the task and the tool result, so both ride in the
    # LangGraph state (outputs, last_output) into the checkpoint database.
    return (
        f"task was: {ctx.task}\nconfig: {config}\n"
        f"curl -H 'Authorization: Bearer {BEARER}' -H 'Authorization: Basic {BASIC_AUTH}'\n"
        f"client = connect(api_key={KWARG_KEY!r})\nPASSWORD={SHELL_PASSWORD} ./deploy.sh\n"
        f"env token {os.environ.get(ENV_NAME, '')}"
    )


def reporter(ctx: TurnContext) -> str:
    return f"done: {ctx.outputs.get('caller', '')}"


# -- the planted imports --------------------------------------------------------------------


def _imports(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    jsonl = folder / "runs.jsonl"
    run = {
        "id": "01M8SWKPCWARXDDQ33NFVQSAB1", "team": f"team {ANTHROPIC_KEY}", "task": f"use {SLACK_TOKEN}",
        "status": "failed", "started_at": "2026-01-01T00:00:00Z", "source": "jsonl",
    }  # fmt: skip
    step = {
        "run_id": run["id"], "index": 0, "agent": f"bot {ANTHROPIC_KEY}", "kind": "tool_call",
        "content": f'login({{"user": "bob", "password": "{JSONL_PASSWORD}"}})',
        "created_at": "2026-01-01T00:00:01Z",
    }  # fmt: skip
    jsonl.write_text(
        json.dumps({"run": run, "steps": [step], "annotations": [], "attributions": []}) + "\n"
    )
    whowhen = folder / "ww.json"
    whowhen.write_text(
        json.dumps(
            {
                "question": f"q with key {GOOGLE_KEY}",
                "ground_truth": "a",
                "mistake_agent": "A",
                "mistake_step": "0",
                "mistake_reason": "r",
                "history": [{"content": f"key={GOOGLE_KEY}", "role": "user", "name": "A"}],
            }
        )
    )
    mad = folder / "mad.json"
    mad.write_text(
        json.dumps(
            [
                {
                    "round": "Round 1",
                    "mas_name": "AG2",
                    "benchmark_name": "GSM-Plus",
                    "trace_id": "77",
                    "annotations": [],
                    "trace": f"user (to assistant):\nmy token is {HF_TOKEN}\n"
                    "--------------------------------------------------------------------------------\n"
                    "assistant (to user):\nok\n",
                }
            ]
        )
    )
    return {"jsonl": jsonl, "whowhen": whowhen, "mad": mad}


def _hits(blob: bytes) -> list[str]:
    """Planted secrets (whole, or a distinctive tail of one) found in `blob`."""
    found = []
    for secret in PLANTED:
        if secret.encode() in blob or secret[-10:].encode() in blob:
            found.append(secret)
    return found


def _scan(folder: Path) -> dict[str, list[str]]:
    return {
        str(p.relative_to(folder)): hits
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (hits := _hits(p.read_bytes()))
    }


def test_no_planted_secret_reaches_a_file_or_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = _imports(tmp_path / "inputs")
    work = tmp_path / "work"
    work.mkdir()
    team = work / "team.yaml"
    team.write_text(TEAM_YAML)
    db = work / "s.db"
    monkeypatch.setenv(ENV_NAME, ENV_SECRET)
    monkeypatch.delenv("MASCOPE_DB", raising=False)
    monkeypatch.chdir(work)
    printed: list[bytes] = []

    # The run itself in a real process, as a user starts it ...
    ran = subprocess.run(
        [sys.executable, "-m", "mascope.cli", "run", str(team), "--task", TASK, "--db", str(db)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300"},
        capture_output=True,
    )
    printed += [ran.stdout, ran.stderr]
    assert ran.returncode == 0, ran.stderr.decode()
    assert b"tool_call" in ran.stdout and b"login" in ran.stdout  # the stream was printed

    # ... the rest in process (the same code, without a second per command).
    def cli(*args: str) -> Result:
        done = runner.invoke(app, [*args, "--db", str(db)])
        printed.extend([done.stdout_bytes, done.stderr_bytes])
        assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
        return done

    for fmt, path in inputs.items():
        assert cli("runs", "import", fmt, str(path)).exit_code == 0
    ids = [r.id for r in TraceStore(db, create=False).list_runs(limit=50)]
    assert len(ids) == 4
    for rid in ids:
        cli("runs", "show", rid, "--full")
        cli("runs", "show", rid, "--json")
    cli("runs", "list")
    cli("runs", "list", "--json")
    assert cli("runs", "export", "--all", "--format", "jsonl", "--out", "all.jsonl").exit_code == 0
    assert (
        cli("runs", "export", "--all", "--format", "otel", "--out", "all.otel.json").exit_code == 0
    )
    assert cli("runs", "export", ids[-1], "--out", "one.jsonl").exit_code == 0
    # A user error that quotes its input prints it redacted too.
    assert cli("runs", "show", f"no such run {OPENAI_KEY}").exit_code == 2

    files = [p.name for p in work.iterdir()]
    assert "s.checkpoints.db" in files and "all.otel.json" in files, files
    found = {h for hits in _scan(work).values() for h in hits} | set(_hits(b"".join(printed)))
    tally("secrets", tried=len(PLANTED), bad=len(found))
    assert _scan(work) == {}
    assert _hits(b"".join(printed)) == []
    # The masked text is still there to read.
    assert b"[REDACTED]" in (work / "all.jsonl").read_bytes()


def test_checkpoint_wal_holds_no_secret_while_the_run_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scanned from inside the run, while both SQLite files and their WALs are open."""
    monkeypatch.setenv(ENV_NAME, ENV_SECRET)
    monkeypatch.syspath_prepend(str(ROOT))
    team_file = tmp_path / "team.yaml"
    team_file.write_text(TEAM_YAML)
    db = tmp_path / "s.db"
    scans: list[dict[str, list[str]]] = []
    seen: list[StepEvent] = []
    wal_seen: set[str] = set()

    def on_step(event: StepEvent) -> None:
        seen.append(event)
        wal_seen.update(p.name for p in tmp_path.glob("*-wal"))
        scans.append(_scan(tmp_path))

    with TraceStore(db) as store:
        team = Team.from_yaml(team_file, store=store)
        result = team.run(TASK, on_step=on_step)
        assert result.succeeded, result.error
        scans.append(_scan(tmp_path))
        # Fork from the caller's message: the checkpoint read back still runs.
        step = next(
            s.index
            for s in store.steps(result.run_id)
            if s.agent == "caller" and s.kind == "message"
        )
        child = team.fork(result.run_id, step=step, content="a clean replacement", on_step=on_step)
        assert child.succeeded, child.error
        assert store.get_run(child.run_id).final_answer == "done: a clean replacement"
    scans.append(_scan(tmp_path))
    assert {"s.db-wal", "s.checkpoints.db-wal"} <= wal_seen
    assert [s for s in scans if s] == []
    assert _hits("\n".join(e.content + (e.error or "") for e in seen).encode()) == []


_FAILURES: list[str] = []


def fails_once(ctx: TurnContext) -> str:
    """Fails the first time with a message that quotes the task, as careless code does."""
    _FAILURES.append(ctx.task)
    if len(_FAILURES) == 1:
        raise ValueError(f"cannot handle {ctx.task!r}")
    return "handled"


def test_a_nodes_error_is_redacted_in_the_checkpoint_and_the_run_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    _FAILURES.clear()
    team_file = tmp_path / "team.yaml"
    team_file.write_text(
        "name: flaky\nagents:\n  - name: a\n    function: tests.test_secrets:fails_once\n"
        "topology:\n  kind: pipeline\n  stages: [a]\n"
    )
    with TraceStore(tmp_path / "s.db") as store:
        team = Team.from_yaml(team_file, store=store)
        first = team.run(TASK)
        assert first.status == "error" and first.error and "[REDACTED]" in first.error
        assert _scan(tmp_path) == {}
        again = team.resume(first.run_id)
        assert again.succeeded, again.error
        # The resumed node read the task back from the checkpoint: redacted, the secret gone for good.
        assert _FAILURES[0] == TASK and _hits(_FAILURES[1].encode()) == []
        assert "[REDACTED]" in _FAILURES[1]
    assert _scan(tmp_path) == {}
