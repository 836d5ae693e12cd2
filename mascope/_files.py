"""Reading the small YAML/JSON files users hand to mascope, with errors that say which."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mascope._safeload import loads_yaml, read_text


def read_yaml(path: str | Path, *, what: str) -> Any:
    """Parse a JSON or YAML file within mascope's size, depth and alias bounds;
    a missing, malformed or oversized file is a one-line `ConfigError`."""
    path = Path(path)
    text = read_text(path, what=what)
    return loads_yaml(text, source=f"{what} {path}", kind="JSON or YAML")
