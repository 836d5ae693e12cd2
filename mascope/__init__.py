"""mascope: run teams of LLM agents and find out why they failed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mascope._lazy import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mascope.agents import Agent
    from mascope.errors import MascopeError, UserError
    from mascope.graphs import RunResult, Team
    from mascope.models import ChatModel, ChatResponse, Message, get_model
    from mascope.settings import Settings
    from mascope.traces import TraceStore

_EXPORTS = {
    "Agent": "mascope.agents",
    "Team": "mascope.graphs",
    "RunResult": "mascope.graphs",
    "ChatModel": "mascope.models",
    "ChatResponse": "mascope.models",
    "Message": "mascope.models",
    "get_model": "mascope.models",
    "MascopeError": "mascope.errors",
    "UserError": "mascope.errors",
    "Settings": "mascope.settings",
    "TraceStore": "mascope.traces",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = [
    "Agent",
    "ChatModel",
    "ChatResponse",
    "MascopeError",
    "Message",
    "RunResult",
    "Settings",
    "Team",
    "TraceStore",
    "UserError",
    "__version__",
    "get_model",
]
