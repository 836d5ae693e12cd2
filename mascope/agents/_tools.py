"""Typed tools: a plain Python function with type hints becomes a tool."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, get_type_hints

from pydantic import ValidationError, create_model

from mascope.errors import ConfigError, RuntimeFailure
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


class ToolUnavailable(RuntimeFailure):
    """A tool's server went away: the run cannot go on (it ends in error, and can be resumed)."""


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


def import_object(
    path: str, *, what: str, base_dir: str | Path | None = None, source: str | None = None
) -> Any:
    """Import `package.module:attribute` (dots after the colon walk attributes).

    With `base_dir` (a team file's folder), modules there are found without setting
    PYTHONPATH: the folder heads `sys.path` only while the module is imported, so
    imports the module does later, inside its functions, do not see it.
    """
    where = f"{source}: " if source else ""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{where}{what} {path!r} must look like package.module:function")
    try:
        with _searching(base_dir):
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not _is_prefix(exc.name, module_name):
            # the module exists but something it imports does not
            raise ConfigError(f"{where}cannot import {what} {path!r}: {exc}") from None
        folders = [str(Path(base_dir).resolve())] if base_dir is not None else []
        if "" in sys.path or str(Path.cwd()) in sys.path:
            folders.append(f"{Path.cwd()} (the current folder)")
        raise ConfigError(
            f"{where}cannot import {what} {path!r}: no module named {exc.name!r} in "
            f"{' or '.join(folders) or 'no folder'}, nor among installed packages; "
            f"put {module_name.replace('.', '/')}.py next to the team file or install it"
        ) from None
    except ImportError as exc:
        raise ConfigError(f"{where}cannot import {what} {path!r}: {exc}") from None
    except Exception as exc:  # the module itself fails as it loads (a syntax error, a raise)
        said = " ".join(str(exc).split())[:300]
        raise ConfigError(
            f"{where}cannot import {what} {path!r}: importing {module_name} raised {type(exc).__name__}: {said}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"{where}cannot import {what} {path!r}: {module_name} has no {attr}"
            ) from None
    return obj


def function_path(fn: Callable[..., Any], name: str) -> str:
    """How a Python function is written into a stored spec: `module:qualname`, or
    `<python:NAME>` when it cannot be imported back (a lambda, a local, `__main__`)."""
    module, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if module and module != "__main__" and "<" not in qual:
        return f"{module}:{qual}"
    return f"<python:{name}>"


def import_function(
    path: str, *, what: str, where: str, base_dir: str | Path | None = None
) -> Callable[..., Any]:
    """The function a spec names at `where` (e.g. `team.yaml: tools.add`); a
    `<python:...>` placeholder, an import failure or something not callable is
    a one-line `ConfigError`."""
    if path.startswith("<python"):
        raise ConfigError(
            f"{where} was a Python function that cannot be reloaded; run this team from Python"
        )
    fn = import_object(path, what=what, base_dir=base_dir, source=where)
    if not callable(fn):
        raise ConfigError(f"{where}: {what} {path} is not callable")
    return cast("Callable[..., Any]", fn)


def _is_prefix(name: str, module_name: str) -> bool:
    return module_name == name or module_name.startswith(name + ".")


@contextlib.contextmanager
def _searching(base_dir: str | Path | None) -> Iterator[None]:
    """`base_dir` first on `sys.path` for the length of one import."""
    if base_dir is None:
        yield
        return
    entry = str(Path(base_dir).resolve())
    sys.path.insert(0, entry)
    importlib.invalidate_caches()  # a module written just before the run must be seen
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)
