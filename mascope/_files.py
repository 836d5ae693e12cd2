"""Reading the small YAML/JSON files users hand to mascope, and writing files whole, with errors that say which."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from mascope._safeload import loads_yaml, read_text
from mascope.errors import ConfigError


def read_yaml(path: str | Path, *, what: str) -> Any:
    """Parse a JSON or YAML file within mascope's size, depth and alias bounds;
    a missing, malformed or oversized file is a one-line `ConfigError`."""
    path = Path(path)
    text = read_text(path, what=what)
    return loads_yaml(text, source=f"{what} {path}", kind="JSON or YAML")


def check_writable_target(target: Path) -> None:
    """Refuse, with one line, a file that cannot be written: a missing folder or a folder."""
    if not target.parent.exists():
        raise ConfigError(f"cannot write {target}: folder {target.parent} does not exist")
    if target.is_dir():
        raise ConfigError(f"cannot write {target}: it is a folder; name a file to write")


def write_atomically(target: str | Path, write: Callable[[IO[str]], object]) -> Path:
    """Write a file whole or not at all: `write` fills a temporary file beside
    `target`, which is then renamed over it with the permissions a new file gets.

    A failure (or Ctrl-C) leaves neither a half file nor the temporary one; an
    OS error is a one-line `ConfigError` naming the file.
    """
    target = Path(target).expanduser()
    check_writable_target(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {target}: {exc.strerror or exc}; choose a file in a folder you can write"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            write(fh)
        umask = os.umask(0)  # mkstemp makes 0600; a written file should look like any other
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
