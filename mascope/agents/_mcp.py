"""MCP tools: a team names MCP servers (stdio or streamable HTTP) and their tools become team tools.

Calls go through the official `mcp` package. Each run starts its own connection
to every server (and stops it when the run ends); the team's tool list comes
from one connection opened when the team is built, so a server that does not
start is a load-time error. Everything a server says (tool names,
descriptions, schemas, results) is untrusted data: it is shown to the model
and recorded as tool results, and never used as a path or a command.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import re
import shlex
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field

from mascope.errors import ConfigError
from mascope.models import ToolSpec

from ._tools import Tool, ToolArgumentError, ToolUnavailable

SEPARATOR = "."
"""Between a server's name and its tool's name in a team: `calc.add`."""
_WIRE_NAME = re.compile(r"[^A-Za-z0-9_-]")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_SERVER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,39}$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class McpServerSpec(BaseModel):
    """An MCP server whose tools the team's agents may use: a command (stdio) or a `url` (HTTP)."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        json_schema_extra={"examples": [{"command": "python", "args": ["server.py"]}]},
    )

    command: str | None = None
    """stdio: the program that runs the server (`python` means the Python running mascope)."""
    args: list[str] = Field(default_factory=list)
    """stdio: its arguments; the server runs in the team file's folder, so `server.py` there is found."""
    env: dict[str, str] = Field(default_factory=dict)
    """stdio: extra environment variables; `${NAME}` is replaced by the variable NAME of
    mascope's environment, so secrets stay out of the team file and the trace store."""
    url: str | None = Field(default=None, examples=["http://127.0.0.1:8000/mcp"])
    """HTTP: the server's streamable HTTP endpoint (give this or `command`)."""
    timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """Seconds to wait for the server to start, to list its tools, and for each call."""


class McpServerError(ToolUnavailable):
    """An MCP server stopped answering during a run: the run ends in error and can be resumed."""


@dataclass
class McpServer:
    """One configured server: how to reach it, and the connection of the run in progress."""

    name: str
    spec: McpServerSpec
    cwd: Path | None = None
    source: str = "team"

    @property
    def shown(self) -> str:
        """The server as a person recognises it: its command line or its URL."""
        if self.spec.url is not None:
            return self.spec.url
        return shlex.join([self.spec.command or "", *self.spec.args])

    def check(self) -> None:
        """What can be checked without starting it: a name, and exactly one transport."""
        where = f"{self.source}: mcp_servers.{self.name}"
        if not _SERVER_NAME.match(self.name):
            raise ConfigError(
                f"{where}: a server name is letters, digits, _ or - (it prefixes its tools: {self.name}.TOOL)"
            )
        if (self.spec.command is None) == (self.spec.url is None):
            raise ConfigError(
                f"{where}: give command (stdio, e.g. command: python, args: [server.py]) or url (HTTP), not both or neither"
            )
        if self.spec.url is not None and not re.match(r"^https?://", self.spec.url):
            raise ConfigError(
                f"{where}.url: use an http:// or https:// URL (got {self.spec.url!r})"
            )
        if self.spec.url is not None and (self.spec.args or self.spec.env):
            raise ConfigError(f"{where}: args and env are for a command (stdio) server, not a url")


@dataclass
class _Session:
    """A live connection, owned by a task of its own (the `mcp` client's task groups must
    be entered and left by one task; a dying server then cannot tear down the run's)."""

    server: McpServer
    session: Any = None
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    errlog: TextIO | None = None

    async def open(self) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._own(ready))
        try:
            await asyncio.wait_for(asyncio.shield(ready), self.server.spec.timeout_s)
        except TimeoutError:
            await self.close()
            raise self._failed(f"no answer within {self.server.spec.timeout_s:g} s") from None
        except McpServerError:
            await self.close()
            raise

    async def _own(self, ready: asyncio.Future[None]) -> None:
        from mcp import ClientSession

        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                self.session = session
                ready.set_result(None)
                await self.stop.wait()
        except Exception as exc:  # the server could not start or went away
            if not ready.done():
                reason = _reason(exc)
                if self.server.spec.url is not None:
                    reason = reason.replace("did not start or stopped", "could not be reached")
                failed = exc if isinstance(exc, McpServerError) else self._failed(reason)
                ready.set_exception(failed)
        except BaseException as exc:  # cancelled while starting: say so to the opener
            if not ready.done():
                ready.set_exception(self._failed(f"{type(exc).__name__}"))
            raise
        finally:
            self.session = None

    def _transport(self) -> contextlib.AbstractAsyncContextManager[Any]:
        spec = self.server.spec
        if spec.url is not None:
            from mcp.client import streamable_http as http

            # mcp 1.x before 1.24 named it streamablehttp_client
            old_name = "streamablehttp_client"
            connect = getattr(http, "streamable_http_client", None) or getattr(http, old_name)
            return _pair(connect(spec.url))
        from mcp import StdioServerParameters, stdio_client

        command = spec.command or ""
        if command in ("python", "python3"):
            command = sys.executable  # the Python that runs mascope (and has its packages)
        masked = sorted(k for k, v in spec.env.items() if "[REDACTED]" in v)
        if masked:
            # A literal secret in the team file was masked in the stored run: say how to keep it.
            raise self._failed(
                f"cannot start: env {masked[0]} was redacted when the run was stored; "
                f"write it as {masked[0]}: ${{{masked[0]}}} in the team file to read it from the environment"
            )
        env = {
            k: _ENV_REF.sub(lambda m: os.environ.get(m.group(1), ""), v)
            for k, v in spec.env.items()
        }
        params = StdioServerParameters(
            command=command,
            args=list(spec.args),
            env=env or None,
            cwd=str(self.server.cwd) if self.server.cwd is not None else None,
        )
        # The server's own stderr goes to a file, so its last line can explain a failure.
        self.errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115 (closed by close())
        return stdio_client(params, errlog=self.errlog)

    def _failed(self, reason: str) -> McpServerError:
        said = _last_line(self.errlog)
        return McpServerError(
            f"MCP server {self.server.name} ({self.server.shown}) {reason}"
            + (f"; it said: {said}" if said else "")
        )

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        if self.session is None or self.task is None or self.task.done():
            raise self._failed("is not running (it exited)")
        call = asyncio.ensure_future(self.session.call_tool(name, arguments))
        # Whichever ends first: the call, or the task that owns the connection (server gone).
        done, _ = await asyncio.wait(
            {call, self.task},
            timeout=self.server.spec.timeout_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if call in done:
            try:
                return call.result()
            except Exception as exc:
                if self.task.done() or _connection_lost(exc):
                    raise self._failed(f"exited during a call to {name}") from None
                # a protocol-level refusal (unknown tool, bad parameters): the model sees it
                raise McpToolError(" ".join(str(exc).split())[:500] or type(exc).__name__) from None
        call.cancel()
        with contextlib.suppress(BaseException):
            await call
        if not done:
            raise self._failed(
                f"did not answer a call to {name} within {self.server.spec.timeout_s:g} s"
            )
        raise self._failed(f"exited during a call to {name}")

    async def list_tools(self) -> list[Any]:
        tools: list[Any] = []
        cursor = None
        for _ in range(100):  # a server that pages forever is cut off
            if cursor is None:
                result = await asyncio.wait_for(
                    self.session.list_tools(), self.server.spec.timeout_s
                )
            else:
                from mcp import types

                result = await asyncio.wait_for(
                    self.session.list_tools(params=types.PaginatedRequestParams(cursor=cursor)),
                    self.server.spec.timeout_s,
                )
            tools.extend(result.tools)
            cursor = getattr(result, "next_cursor", None) or getattr(result, "nextCursor", None)
            if not cursor:
                break
        return tools

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.task), 10)
            except BaseException:  # a server that will not stop must not hang or fail the run
                self.task.cancel()
                with contextlib.suppress(BaseException):
                    await self.task
        if self.errlog is not None:
            self.errlog.close()
            self.errlog = None


@contextlib.asynccontextmanager
async def _pair(cm: Any) -> AsyncIterator[tuple[Any, Any]]:
    """The HTTP transport yields (read, write, get_session_id) in mcp 1.x and (read, write) later."""
    async with cm as streams:
        yield streams[0], streams[1]


CONNECTION_CLOSED = -32000
"""JSON-RPC error code the `mcp` client gives pending requests when the server goes away."""


def _connection_lost(exc: BaseException) -> bool:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) if error is not None else getattr(exc, "code", None)
    if code == CONNECTION_CLOSED:
        return True
    import anyio

    return isinstance(
        exc, anyio.ClosedResourceError | anyio.BrokenResourceError | ConnectionError | EOFError
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_reason(e) for e in exc.exceptions[:3])
    if isinstance(exc, FileNotFoundError):
        return "did not start: the command was not found"
    if isinstance(exc, PermissionError):
        return "did not start: the command is not executable"
    text = " ".join(str(exc).split())[:300]
    return f"did not start or stopped: {type(exc).__name__}" + (f": {text}" if text else "")


def _last_line(log: TextIO | None) -> str:
    if log is None or log.closed:
        return ""
    with contextlib.suppress(OSError, ValueError):
        log.flush()
        log.seek(0)
        lines = [line.strip() for line in log.read()[-4000:].splitlines() if line.strip()]
        return lines[-1][:200] if lines else ""
    return ""


_RUN_SESSIONS: contextvars.ContextVar[Mapping[str, _Session] | None] = contextvars.ContextVar(
    "mascope_mcp_sessions", default=None
)


@contextlib.asynccontextmanager
async def mcp_sessions(servers: Mapping[str, McpServer]) -> AsyncIterator[None]:
    """Connect to every server for the length of a run; its MCP tools call through these."""
    if not servers:
        yield
        return
    sessions: dict[str, _Session] = {}
    try:
        for name, server in servers.items():
            session = _Session(server)
            await session.open()
            sessions[name] = session
        token = _RUN_SESSIONS.set(sessions)
        try:
            yield
        finally:
            _RUN_SESSIONS.reset(token)
    finally:
        for session in sessions.values():
            await session.close()


class McpTool(Tool):
    """A tool of an MCP server, called through the run's connection to it."""

    server: str
    remote: str
    schema: dict[str, Any]

    def __init__(self, server: str, remote: str, description: str, schema: dict[str, Any]):
        name = f"{server}{SEPARATOR}{remote}"
        # Model APIs allow only [A-Za-z0-9_-] in function names: the model sees `calc__add`.
        wire = _WIRE_NAME.sub("_", f"{server}__{remote}")[:64]
        super().__init__(
            name,
            description,
            self._unbound,
            ToolSpec(name=wire, description=description, parameters=schema),
            f"mcp:{server}",
        )
        self.server, self.remote, self.schema = server, remote, schema

    @staticmethod
    def _unbound(**_: Any) -> str:
        raise McpServerError("an MCP tool is called through acall")

    async def acall(self, arguments: dict[str, Any]) -> str:
        """Check the arguments against the server's schema, call the tool, render its result as text."""
        import jsonschema

        try:
            jsonschema.validate(arguments, self.schema)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path) or "arguments"
            raise ToolArgumentError(
                f"bad arguments for {self.name}: {where}: {exc.message[:300]}. "
                f"Expected arguments matching {json.dumps(self.schema)[:2000]}"
            ) from None
        except jsonschema.SchemaError:
            pass  # the server's schema is its own business; the server checks the call
        sessions = _RUN_SESSIONS.get() or {}
        session = sessions.get(self.server)
        if session is None:
            raise McpServerError(
                f"MCP tool {self.name} was called outside a run of its team (no connection to {self.server})"
            )
        result = await session.call(self.remote, arguments)
        text = _result_text(result)
        if getattr(result, "is_error", None) or getattr(result, "isError", None):
            raise McpToolError(text or "the tool reported an error")
        return text


class McpToolError(Exception):
    """The MCP tool itself reported an error (shown to the model like any tool's failure)."""


def _result_text(result: Any) -> str:
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(getattr(block, "text", "")))
        elif kind in ("image", "audio"):
            mime = getattr(block, "mime_type", None) or getattr(block, "mimeType", None) or "?"
            parts.append(
                f"[{kind} {mime}, {len(getattr(block, 'data', '') or '')} base64 characters]"
            )
        else:
            dump = getattr(block, "model_dump", None)
            parts.append(
                json.dumps(dump(mode="json") if callable(dump) else str(block), default=str)
            )
    structured = getattr(result, "structured_content", None) or getattr(
        result, "structuredContent", None
    )
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False, default=str))
    return "\n".join(parts)


def load_mcp_tools(servers: Mapping[str, McpServer]) -> dict[str, McpTool]:
    """Start each server once, list its tools, stop it; a server that does not start is a ConfigError."""
    if not servers:
        return {}
    for server in servers.values():
        server.check()

    async def listing() -> dict[str, McpTool]:
        found: dict[str, McpTool] = {}
        for name, server in servers.items():
            session = _Session(server)
            try:
                await session.open()
                listed = await session.list_tools()
            except McpServerError as exc:
                raise ConfigError(f"{server.source}: mcp_servers.{name}: {exc}") from None
            except TimeoutError:
                raise ConfigError(
                    f"{server.source}: mcp_servers.{name}: MCP server {name} ({server.shown}) did not list its tools within {server.spec.timeout_s:g} s"
                ) from None
            finally:
                await session.close()
            for t in listed:
                remote = str(getattr(t, "name", ""))
                if not _TOOL_NAME.match(remote):
                    continue  # a name no model API accepts (or a hostile one): not offered
                schema = getattr(t, "input_schema", None) or getattr(t, "inputSchema", None) or {}
                if not isinstance(schema, dict):
                    schema = {}
                schema = {"type": "object", "properties": {}, **schema}
                description = " ".join(str(getattr(t, "description", "") or "").split())[:1000]
                made = McpTool(name, remote, description, schema)
                found[made.name] = made
        return found

    tools: dict[str, McpTool] = _run_in_thread(listing)
    return tools


def _run_in_thread(make: Any) -> Any:
    """Run a coroutine to completion on a loop of its own (the caller may be inside one)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="mascope-mcp-list", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
