"""mascope: run teams of LLM agents and find out why they failed."""

from mascope.errors import MascopeError, UserError
from mascope.models import ChatModel, ChatResponse, Message, get_model
from mascope.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "ChatModel",
    "ChatResponse",
    "MascopeError",
    "Message",
    "Settings",
    "UserError",
    "__version__",
    "get_model",
]
