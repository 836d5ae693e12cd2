"""Reading the small YAML/JSON files users hand to mascope, with errors that say which."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mascope.errors import ConfigError


def read_yaml(path: str | Path, *, what: str) -> Any:
    """Parse a JSON or YAML file; a missing or malformed file is a one-line `ConfigError`."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path} is not valid JSON or YAML: {exc}") from None
