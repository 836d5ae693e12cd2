"""Shared helpers for benchmarks: medians, and writing a section of docs/benchmarks.md."""

from __future__ import annotations

import platform
import re
import statistics
from pathlib import Path


def median(values: list[float]) -> float:
    return statistics.median(values)


def pct(x: float | None, ci: list[float] | None = None) -> str:
    """A rate as a whole percentage, with its interval when given: `42 [30, 55]`."""
    if x is None:
        return "-"
    return f"{100 * x:.0f}" + (f" [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]" if ci else "")


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`,
    or append the section if it is not there yet."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    path.write_text(text)
