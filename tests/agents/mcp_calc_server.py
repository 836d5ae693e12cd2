"""A tiny MCP server for the tests, run as its own process (stdio, or HTTP with --http PORT).

Tools: add, shout, getenv, fail (reports a tool error). With MCP_CALC_DIE_ONCE=FILE, `add`
makes the server exit mid-call the first time (when FILE does not exist yet).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

try:  # mcp 2.x
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as Server  # type: ignore[no-redef]

server = Server("calc")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    marker = os.environ.get("MCP_CALC_DIE_ONCE")
    if marker and not Path(marker).exists():
        Path(marker).write_text("died")
        os._exit(3)  # the server dies in the middle of the call
    return str(a + b)


@server.tool()
def shout(text: str) -> str:
    """Upper-case a text (returns whatever it is given: untrusted data)."""
    return text.upper()


@server.tool()
def getenv(var: str) -> str:
    """The value of one of the server's environment variables."""
    return os.environ.get(var, "(unset)")


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the given reason."""
    raise ValueError(reason)


if __name__ == "__main__":
    if os.environ.get("MCP_CALC_GREETING"):
        print(os.environ["MCP_CALC_GREETING"], file=sys.stderr)
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        port = int(sys.argv[2])
        try:  # mcp 2.x takes the port here
            server.run(transport="streamable-http", host="127.0.0.1", port=port)  # type: ignore[call-overload]
        except TypeError:  # mcp 1.x reads it from the settings
            server.settings.host, server.settings.port = "127.0.0.1", port  # type: ignore[attr-defined]
            server.run(transport="streamable-http")
    else:
        server.run()
