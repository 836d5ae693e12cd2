"""How runs look in a terminal, shared by the CLI and the TUI so both agree."""

from __future__ import annotations

import zlib
from datetime import datetime

STATUS_STYLE = {
    "succeeded": "bold green",
    "failed": "bold red",
    "error": "bold red",
    "running": "bold yellow",
    "interrupted": "bold magenta",
    "unknown": "dim",
    "abstained": "bold blue",
    "paused": "bold cyan",
}
_PALETTE = [
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "bright_red",
    "bright_cyan",
    "bright_magenta",
    "bright_green",
    "orange3",
    "purple",
    "turquoise2",
]


def agent_style(agent: str) -> str:
    """The same colour for the same agent name, everywhere."""
    return _PALETTE[zlib.crc32(agent.encode()) % len(_PALETTE)]


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
