"""Every `mascope` command in the README runs as written, the way a new user would type it.

The commands are read from the README itself, so a new or changed example is tested
without touching this file. Placeholders become real values (RUN_ID is a run the
README's own `mascope run` examples made); commands that need an OpenAI key must fail
on one line with exit 2 when there is none. The only liberties taken are listed in
SPEED: a smaller --limit where the written one would take many minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# Written value -> what the test runs instead, only to keep the suite within minutes.
SPEED = {("eval", "whowhen", "--limit"): ("20", "1")}
# Commands not run here, and why.
SKIP = {
    ("tui",): "interactive; driven headless in tests/tui",
    ("judge", "--all"): "the embedded judge over every failed run takes many minutes; "
    "the batch is tested in tests/diagnosis",
}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def readme_commands() -> list[list[str]]:
    text = README.read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [
        shlex.split(line, comments=True)[1:]
        for line in lines
        if line.startswith(".venv/bin/mascope ")
    ]


def _needs_openai(args: list[str]) -> bool:
    return any(a.startswith("openai:") for a in args)


def _skip_reason(args: list[str]) -> str | None:
    for key, why in SKIP.items():
        if args[: len(key)] == list(key):
            return why
    return None


def _example_run(db: Path, args: list[str]) -> str:
    """The longest run the README's examples made; for `--step K --content TEXT`, one
    whose step K is an agent's message (text replaces a message; a verdict takes JSON)."""
    from mascope.traces import TraceStore

    step = int(args[args.index("--step") + 1]) if "--step" in args else None
    with TraceStore(db) as store:
        native = [r for r in store.list_runs(limit=1000) if r.source == "native"]
        if step is not None and "--content" in args:
            native = [
                r
                for r in native
                if any(s.index == step and s.kind == "message" for s in store.steps(r.id))
            ]
        assert native, f"the README's `mascope run` examples made no run that fits {args}"
        return max(native, key=lambda r: r.step_count).id


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_readme_command_works_as_written(tmp_path: Path, datasets: Path) -> None:
    commands = readme_commands()
    assert len(commands) >= 20, "the README lost its command examples?"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "answer.schema.json").write_text(json.dumps(SCHEMA))
    db = tmp_path / "mascope.db"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "MASCOPE_")) or k == "MASCOPE_LOCAL_THREADS"
    }
    env.update(MASCOPE_DB=str(db), PYTHONPATH=str(ROOT))
    problems: list[str] = []
    ran = 0
    for args in commands:
        if _skip_reason(args):
            continue
        out_file = None
        if ">" in args:
            at = args.index(">")
            args, out_file = args[:at], tmp_path / args[at + 1]
        wanted = [
            "RUN_ID" in args and _example_run(db, args),
            "WHO_AND_WHEN_DIR" in args and str(datasets / "who_and_when"),
            "MAD_FILE.json" in args and str(datasets / "mast" / "mad_human_sample_4records.json"),
        ]
        run_id, whowhen, mad = wanted
        real = []
        for i, a in enumerate(args):
            a = {"RUN_ID": run_id, "WHO_AND_WHEN_DIR": whowhen, "MAD_FILE.json": mad}.get(a, a)
            a = {"my_team.yaml": "examples/solver_checker.yaml", "runs.db": str(db)}.get(a, a)
            for (cmd, sub, flag), (was, now) in SPEED.items():
                if args[:2] == [cmd, sub] and i > 0 and args[i - 1] == flag and a == was:
                    a = now
            real.append(str(a))
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "mascope.cli", *real],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        ran += 1
        print(
            f"{time.monotonic() - started:6.1f} s  exit {done.returncode}  mascope {shlex.join(real)}"
        )
        if out_file is not None:
            out_file.write_text(done.stdout)
        shown = "mascope " + shlex.join(args)
        if "Traceback" in done.stderr or "Traceback" in done.stdout:
            problems.append(f"{shown}: traceback\n{done.stderr[-2000:]}")
            continue
        if _needs_openai(args):
            expected: set[int] = {2}
        elif args[:1] == ["run"]:
            expected = {0, 1}  # the embedded model may well fail the task: that is a result
        elif args[:2] == ["runs", "resume"]:
            expected = {2}  # RUN_ID finished: resume says to fork instead, on one line
        elif args[:2] == ["runs", "fork"]:
            expected = {0, 1}
        else:
            expected = {0}
        if done.returncode not in expected:
            problems.append(f"{shown}: exit {done.returncode}, expected {sorted(expected)}\n"
                            f"{done.stderr[-2000:]}")  # fmt: skip
        elif done.returncode == 2:
            # Progress lines (a run's header, visible retries) may come first; the
            # error itself is one line, the last.
            lines = done.stderr.strip().splitlines()
            errors = [line for line in lines if line.startswith("error:")]
            if len(errors) != 1 or lines[-1] != errors[0]:
                problems.append(f"{shown}: exit 2 without one closing error line:\n{done.stderr}")
    assert ran >= 20
    assert not problems, "\n\n".join(problems)
