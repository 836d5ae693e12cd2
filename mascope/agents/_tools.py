"""Typed tools: a plain Python function with type hints becomes a tool."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import ValidationError, create_model

from mascope.errors import ConfigError
from mascope.models import ToolSpec

FINAL_ANSWER = "final_answer"


@dataclass
class Tool:
    """A callable the model can ask for, with the JSON schema of its arguments."""

    name: str
    description: str
    fn: Callable[..., Any]
    spec: ToolSpec
    source: str | None = None
    """`module:attribute` the function can be imported from again, if it can."""

    async def acall(self, arguments: dict[str, Any]) -> str:
        """Validate the arguments, call the function, and render its result as text."""
        model = _arguments_model(self.fn)
        try:
            args = model.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()[:3]
            )
            raise ToolArgumentError(
                f"bad arguments for {self.name}: {problems}. "
                f"Expected arguments matching {json.dumps(self.spec.parameters)}"
            ) from None
        kwargs = {k: getattr(args, k) for k in type(args).model_fields}
        result = self.fn(**kwargs)
        if inspect.isawaitable(result) or asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, str):
            return result
        try:
            return json.dumps(result, ensure_ascii=False, default=str)
        except TypeError:
            return str(result)


class ToolArgumentError(Exception):
    """The model called a tool with arguments that do not fit its signature."""


def _arguments_model(fn: Callable[..., Any]) -> Any:
    cached = getattr(fn, "__mascope_args_model__", None)
    if cached is not None:
        return cached
    sig = inspect.signature(fn)
    try:
        hints = get_type_hints(fn)
    except (NameError, TypeError):
        hints = {}
    fields: dict[str, Any] = {}
    for name, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(name, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, default)
    model = create_model(f"{getattr(fn, '__name__', 'tool')}_arguments", **fields)
    with contextlib.suppress(AttributeError, TypeError):
        fn.__mascope_args_model__ = model  # type: ignore[attr-defined]
    return model


def tool(
    fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> Tool:
    """Make a tool from a function: its name, first docstring paragraph and typed parameters."""
    if isinstance(fn, Tool):
        return fn
    if not callable(fn):
        raise ConfigError(f"a tool must be a function, not {type(fn).__name__}")
    tool_name = name or getattr(fn, "__name__", None)
    if not tool_name or tool_name == "<lambda>":
        raise ConfigError("a lambda tool needs a name: tool(fn, name='...')")
    doc = inspect.getdoc(fn) or ""
    summary = description or doc.split("\n\n")[0].replace("\n", " ").strip()
    schema = _arguments_model(fn).model_json_schema()
    schema.pop("title", None)
    module = getattr(fn, "__module__", None)
    qual = getattr(fn, "__qualname__", "")
    source = f"{module}:{qual}" if module and "<" not in qual and module != "__main__" else None
    return Tool(
        tool_name,
        summary,
        fn,
        ToolSpec(name=tool_name, description=summary, parameters=schema),
        source,
    )


def final_answer_tool() -> Tool:
    def final_answer(answer: str) -> str:
        """Submit the team's final answer and end the run."""
        return answer

    return tool(final_answer)


def import_object(path: str, *, what: str) -> Any:
    """Import `package.module:attribute` (dots after the colon walk attributes)."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what} {path!r} must look like package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {what} {path!r}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"cannot import {what} {path!r}: {module_name} has no {attr}"
            ) from None
    return obj
