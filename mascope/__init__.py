"""mascope: run teams of LLM agents and find out why they failed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mascope._lazy import lazy_exports
from mascope._version import __version__

if TYPE_CHECKING:
    from mascope.agents import Agent
    from mascope.diagnosis import (
        AttributionResult,
        JudgeConfig,
        Judgement,
        aattribute,
        aattribute_many,
        ajudge,
        ajudge_many,
        attribute,
        attribute_many,
        judge,
        judge_many,
    )
    from mascope.errors import MascopeError, UserError
    from mascope.graphs import RunResult, Team
    from mascope.models import ChatModel, ChatResponse, Message, get_model
    from mascope.settings import Settings
    from mascope.traces import TraceStore

_EXPORTS = {
    "Agent": "mascope.agents",
    "Team": "mascope.graphs",
    "RunResult": "mascope.graphs",
    "judge": "mascope.diagnosis",
    "ajudge": "mascope.diagnosis",
    "judge_many": "mascope.diagnosis",
    "ajudge_many": "mascope.diagnosis",
    "JudgeConfig": "mascope.diagnosis",
    "Judgement": "mascope.diagnosis",
    "attribute": "mascope.diagnosis",
    "aattribute": "mascope.diagnosis",
    "attribute_many": "mascope.diagnosis",
    "aattribute_many": "mascope.diagnosis",
    "AttributionResult": "mascope.diagnosis",
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
    "AttributionResult",
    "ChatModel",
    "ChatResponse",
    "JudgeConfig",
    "Judgement",
    "MascopeError",
    "Message",
    "RunResult",
    "Settings",
    "Team",
    "TraceStore",
    "UserError",
    "__version__",
    "aattribute",
    "aattribute_many",
    "ajudge",
    "ajudge_many",
    "attribute",
    "attribute_many",
    "get_model",
    "judge",
    "judge_many",
]
