"""Running untrusted code against tests in a subprocess with time and memory limits."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)

_RUNNER = r"""
import json, sys, traceback, types
results = {"passed": 0, "failed": 0, "errors": []}
solution = types.ModuleType("solution")
sys.modules["solution"] = solution
try:
    exec(compile(open("solution.py").read(), "solution.py", "exec"), solution.__dict__)
except BaseException as exc:
    results["errors"].append("solution.py did not run: " + "".join(traceback.format_exception_only(type(exc), exc)).strip())
    print("@@RESULTS@@" + json.dumps(results))
    sys.exit(0)
scope = dict(solution.__dict__)
tests_src = open("tests.py").read()
try:
    exec(compile(tests_src, "tests.py", "exec"), scope)
    ran_top_level = True
except AssertionError as exc:
    results["failed"] += 1
    results["errors"].append("top-level assert failed: " + (str(exc) or traceback.format_exc(limit=1).strip().splitlines()[-1]))
    ran_top_level = False
except BaseException as exc:
    results["failed"] += 1
    results["errors"].append("tests.py did not run: " + "".join(traceback.format_exception_only(type(exc), exc)).strip())
    ran_top_level = False
tests = [(n, f) for n, f in scope.items() if n.startswith("test") and callable(f)]
for name, fn in tests:
    try:
        fn()
        results["passed"] += 1
    except BaseException as exc:
        results["failed"] += 1
        tb = traceback.extract_tb(exc.__traceback__)
        line = next((f"tests.py line {fr.lineno}: {fr.line}" for fr in reversed(tb) if fr.filename == "tests.py"), "")
        results["errors"].append(f"{name} failed: {type(exc).__name__}: {exc} {line}".strip())
if not tests and ran_top_level and "assert" in tests_src:
    results["passed"] += 1
print("@@RESULTS@@" + json.dumps(results))
"""


@dataclass
class TestRun:
    passed: int
    failed: int
    errors: list[str]
    stdout: str
    stderr: str
    timed_out: bool = False
    exit_code: int | None = 0

    @property
    def ok(self) -> bool:
        return self.passed > 0 and self.failed == 0 and not self.errors and not self.timed_out


def extract_code(text: str) -> str:
    """The Python in `text`: its fenced blocks joined, or the whole text if it has none."""
    blocks = _FENCE.findall(text)
    return "\n\n".join(b.strip() for b in blocks) if blocks else text.strip()


def run_tests(code: str, tests: str, *, timeout_s: float = 10.0, memory_mb: int = 512) -> TestRun:
    """Run `tests` (test_* functions and/or top-level asserts) against `code`.

    The code runs in a fresh Python process in an empty temporary directory,
    with a CPU-time and address-space limit and a wall-clock timeout; its
    output is captured.
    """
    with tempfile.TemporaryDirectory(prefix="mascope-tests-") as tmp:
        Path(tmp, "solution.py").write_text(code)
        Path(tmp, "tests.py").write_text(tests)
        Path(tmp, "runner.py").write_text(_RUNNER)

        def limit() -> None:  # runs in the child before exec
            import resource

            cpu = max(1, int(timeout_s) + 1)
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
            mem = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            os.setsid()

        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
        }
        try:
            done = subprocess.run(
                [sys.executable, "-I", "runner.py"],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                preexec_fn=limit,
                env=env,
            )
        except subprocess.TimeoutExpired as exc:
            out = (
                exc.stdout.decode(errors="replace")
                if isinstance(exc.stdout, bytes)
                else (exc.stdout or "")
            )
            return TestRun(
                0,
                0,
                [f"timed out after {timeout_s:g}s"],
                out[-2000:],
                "",
                timed_out=True,
                exit_code=None,
            )
        marker = done.stdout.rfind("@@RESULTS@@")
        if marker < 0:
            why = (
                "ran out of memory or CPU time"
                if done.returncode < 0
                else f"exited with {done.returncode}"
            )
            return TestRun(
                0,
                0,
                [f"the test process {why}: {done.stderr[-500:].strip()}"],
                done.stdout[-2000:],
                done.stderr[-2000:],
                exit_code=done.returncode,
            )
        results = json.loads(done.stdout[marker + len("@@RESULTS@@") :])
        return TestRun(
            results["passed"],
            results["failed"],
            results["errors"],
            done.stdout[:marker][-2000:],
            done.stderr[-2000:],
            exit_code=done.returncode,
        )
