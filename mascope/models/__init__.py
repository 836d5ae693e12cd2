"""The model layer: the only code in mascope that talks to LLM backends.

Pick a model with a model string and call it::

    from mascope.models import get_model

    model = get_model("local")                      # embedded SmolLM2
    reply = model.chat("Say hello")                 # or: await model.achat(...)
    print(reply.text, reply.usage.total_tokens)
"""

from typing import TYPE_CHECKING

from mascope._lazy import lazy_exports

from ._base import ChatModel, normalize_messages
from ._pricing import DEFAULT_PRICES, PriceTable
from ._registry import BACKENDS, ModelSpec, get_model, parse_model_string
from ._retry import RetryCallback, RetryPolicy
from ._scripted import ScriptedModel, ScriptedReply, load_script
from ._structured import OutputSpec, example_for, extract_json, output_spec, unresolved_ref
from ._types import (
    ChatRequest,
    ChatResponse,
    Message,
    RetryEvent,
    RetryKind,
    TokenCallback,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
)

if TYPE_CHECKING:
    from ._local import EMBEDDED_NAME, LocalModel, embedded_model_path
    from ._openai import OpenAIModel, SchemaMode, learnt_schema_mode

# The backends import their client libraries (openai, llama_cpp) only when used.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "EMBEDDED_NAME": "._local",
        "LocalModel": "._local",
        "embedded_model_path": "._local",
        "OpenAIModel": "._openai",
        "SchemaMode": "._openai",
        "learnt_schema_mode": "._openai",
    },
)

__all__ = [
    "BACKENDS",
    "DEFAULT_PRICES",
    "EMBEDDED_NAME",
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "LocalModel",
    "Message",
    "ModelSpec",
    "OpenAIModel",
    "OutputSpec",
    "PriceTable",
    "RetryCallback",
    "RetryEvent",
    "RetryKind",
    "RetryPolicy",
    "SchemaMode",
    "ScriptedModel",
    "ScriptedReply",
    "TokenCallback",
    "ToolCall",
    "ToolChoice",
    "ToolSpec",
    "Usage",
    "embedded_model_path",
    "example_for",
    "extract_json",
    "get_model",
    "learnt_schema_mode",
    "load_script",
    "normalize_messages",
    "output_spec",
    "parse_model_string",
    "unresolved_ref",
]
