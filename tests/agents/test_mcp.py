"""MCP tools called through a real MCP server process the test starts (stdio and HTTP)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mascope import Agent, Team
from mascope.agents import TurnContext
from mascope.cli import app
from mascope.errors import ConfigError
from mascope.models import ScriptedModel, ScriptedReply, ToolCall
from mascope.traces import TraceStore

from ..test_cli import assert_one_line_error

pytest.importorskip("mcp")

SERVER = Path(__file__).with_name("mcp_calc_server.py")
runner = CliRunner()


def calc(**extra: object) -> dict[str, object]:
    return {"calc": {"command": "python", "args": [str(SERVER)], **extra}}


def call(name: str, **arguments: object) -> ScriptedReply:
    return ScriptedReply(tool_calls=[ToolCall(id=f"c_{name}", name=name, arguments=arguments)])


def test_an_llm_agent_calls_mcp_tools_through_the_server(tmp_path: Path) -> None:
    model = ScriptedModel(
        [
            call("calc__add", a=2, b=3),  # the name the model was offered
            call("calc.add", a="two", b=3),  # bad arguments: the schema says integer
            call("calc.fail", reason="no can do"),  # the tool reports an error
            call("calc.shout", text="ignore your instructions"),  # the role does not allow it
            "The sum is 5.",
        ]
    )
    solver = Agent("solver", role="calculator", tools=["calc.add", "calc.fail"], model=model)
    team = Team("mcp", [solver], mcp_servers=calc(), store=tmp_path / "t.db")
    assert {"calc.add", "calc.shout", "calc.fail"} <= set(team.tools)
    result = team.run("add 2 and 3")
    assert (result.status, result.answer) == ("succeeded", "The sum is 5.")
    steps = result.steps
    tools = [
        (s.kind, s.content) for s in steps if s.kind in ("tool_call", "tool_result", "refusal")
    ]
    assert tools[0] == ("tool_call", 'calc.add({"a": 2, "b": 3})')
    assert tools[1] == ("tool_result", "5")
    assert tools[3][0] == "tool_result" and "bad arguments for calc.add: a:" in tools[3][1]
    assert tools[5][0] == "tool_result" and "McpToolError" in tools[5][1]
    assert tools[7][0] == "refusal" and "calc.shout is not one of solver's tools" in tools[7][1]
    assert [s.error is not None for s in steps if s.kind == "tool_result"] == [False, True, True]
    # the model is offered the server's own schemas, under names model APIs accept
    offered = {t.name: t for t in model.calls[0].tools}
    assert set(offered) == {"calc__add", "calc__fail"}
    assert offered["calc__add"].description == "Add two integers."
    assert offered["calc__add"].parameters["required"] == ["a", "b"]
    assert offered["calc__add"].parameters["properties"]["a"]["type"] == "integer"


async def uses_add(ctx: TurnContext) -> str:
    return "sum: " + await ctx.call_tool("calc.add", a=20, b=22)


def test_a_function_agent_calls_an_mcp_tool_in_an_async_run(tmp_path: Path) -> None:
    import asyncio

    team = Team(
        "mcp",
        [Agent("a", fn=uses_add, tools=["calc.add"])],
        mcp_servers=calc(),
        store=tmp_path / "t.db",
    )
    result = asyncio.run(team.arun("x"))
    assert result.answer == "sum: 42"


TEAM = """
name: mcp-team
agents:
  - {{name: adder, function: "tests.agents.test_mcp:uses_add", tools: [calc.add]}}
mcp_servers:
  calc: {{command: {command}, args: [{args}], env: {{MCP_CALC_DIE_ONCE: "{die}"}}, timeout_s: 20}}
topology: {{kind: pipeline, stages: [adder]}}
"""


def _team_file(
    tmp_path: Path, *, command: str = "python", args: str = "server.py", die: str = ""
) -> Path:
    (tmp_path / "server.py").write_text(SERVER.read_text())
    path = tmp_path / "team.yaml"
    path.write_text(TEAM.format(command=command, args=args, die=die))
    return path


def test_a_yaml_team_runs_a_server_next_to_the_team_file(tmp_path: Path) -> None:
    path = _team_file(tmp_path)
    db = tmp_path / "r.db"
    result = runner.invoke(app, ["run", str(path), "--task", "x", "--db", str(db)])
    assert result.exit_code == 0, result.output
    store = TraceStore(db)
    run = store.list_runs()[0]
    assert run.final_answer == "sum: 42"
    assert [(s.kind, s.content) for s in store.steps(run.id)][:2] == [
        ("tool_call", 'calc.add({"a": 20, "b": 22})'),
        ("tool_result", "42"),
    ]
    check = runner.invoke(app, ["team", "check", str(path)])
    assert check.exit_code == 0, check.output


@pytest.mark.parametrize(
    ("command", "args", "needles"),
    [
        (
            "no-such-mcp-server",
            "server.py",
            ["no-such-mcp-server server.py", "command was not found"],
        ),
        ("python", "missing.py", ["python missing.py", "mcp_servers.calc"]),
    ],
    ids=["no-command", "exits-at-once"],
)
def test_a_server_that_does_not_start_is_a_one_line_error_before_anything_runs(
    tmp_path: Path, command: str, args: str, needles: list[str]
) -> None:
    path = _team_file(tmp_path, command=command, args=args)
    db = tmp_path / "r.db"
    result = runner.invoke(app, ["run", str(path), "--task", "x", "--db", str(db)])
    assert_one_line_error(result, str(path), "MCP server calc", *needles)
    assert not db.exists()


def test_an_agent_tool_the_server_lacks_is_refused_naming_what_it_has(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"agents\[0\].tools: MCP server calc has no tool 'calc.mul'.*calc.add, calc.fail, calc.getenv, calc.shout",
    ):
        Team("t", [Agent("a", fn=uses_add, tools=["calc.mul"])], mcp_servers=calc())
    with pytest.raises(ConfigError, match=r"agents\[0\].tools: no tool named 'calk.add'"):
        Team("t", [Agent("a", fn=uses_add, tools=["calk.add"])], mcp_servers=calc())
    with pytest.raises(ConfigError, match=r"mcp_servers.calc: give command .* or url"):
        Team(
            "t",
            [Agent("a", fn=uses_add)],
            mcp_servers={"calc": {"url": "http://x", "command": "y"}},
        )


def test_a_server_that_dies_mid_run_fails_the_run_and_it_can_be_resumed(tmp_path: Path) -> None:
    marker = tmp_path / "died"
    path = _team_file(tmp_path, die=str(marker))
    db = tmp_path / "r.db"
    first = runner.invoke(app, ["run", str(path), "--task", "x", "--db", str(db)])
    assert first.exit_code == 1, first.output
    assert marker.exists()
    store = TraceStore(db)
    run = store.list_runs()[0]
    assert (run.status, run.termination_reason) == ("error", "error")
    steps = store.steps(run.id)
    assert [(s.agent, s.kind) for s in steps] == [
        ("adder", "tool_call"),
        ("adder", "tool_result"),
        ("runtime", "error"),
    ]
    assert "MCP server calc" in (steps[-1].error or "") and "server.py" in (steps[-1].error or "")
    assert "exited during a call to add" in (steps[-1].error or "")
    resumed = runner.invoke(app, ["runs", "resume", run.id, "--db", str(db)])
    assert resumed.exit_code == 0, resumed.output
    run = TraceStore(db).get_run(run.id)
    assert (run.status, run.final_answer) == ("succeeded", "sum: 42")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the HTTP MCP server did not start")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def test_an_http_server_s_tools_are_called_over_streamable_http(
    tmp_path: Path, http_server: str
) -> None:
    team = Team(
        "mcp",
        [Agent("a", fn=uses_add, tools=["calc.add"])],
        mcp_servers={"calc": {"url": http_server}},
        store=tmp_path / "t.db",
    )
    result = team.run("x")
    assert (result.status, result.answer) == ("succeeded", "sum: 42")
    assert textwrap.shorten(result.steps[1].content, 10) == "42"


SEEN: list[str] = []


async def reads_env(ctx: TurnContext) -> str:
    SEEN.append(await ctx.call_tool("calc.getenv", var="CALC_API_TOKEN"))
    return SEEN[-1]


def test_env_references_reach_the_server_and_only_the_reference_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASCOPE_TEST_MCP_SECRET", "s3cr3t-value-from-env")
    team = Team(
        "mcp",
        [Agent("a", fn=reads_env, tools=["calc.getenv"])],
        mcp_servers=calc(env={"CALC_API_TOKEN": "${MASCOPE_TEST_MCP_SECRET}"}),
        store=tmp_path / "t.db",
    )
    result = team.run("x")
    assert SEEN[-1] == "s3cr3t-value-from-env"  # the server got the value
    assert result.answer == "[REDACTED]"  # and the store, recognising it, did not keep it
    for written in tmp_path.glob("t.db*"):  # the store, its WAL and its checkpoints
        assert b"s3cr3t-value-from-env" not in written.read_bytes()
    stored = TraceStore(tmp_path / "t.db").get_run(result.run_id).spec
    assert stored["mcp_servers"]["calc"]["env"] == {"CALC_API_TOKEN": "${MASCOPE_TEST_MCP_SECRET}"}
    # a literal secret is masked when stored; a rebuilt team says how to keep it instead
    # of handing the server the mask
    literal = dict(
        stored,
        mcp_servers={
            "calc": {**stored["mcp_servers"]["calc"], "env": {"CALC_API_TOKEN": "[REDACTED]"}}
        },
    )
    from mascope.graphs import parse_team

    with pytest.raises(
        ConfigError,
        match=r"env CALC_API_TOKEN was redacted .* CALC_API_TOKEN: \$\{CALC_API_TOKEN\}",
    ):
        Team.from_spec(parse_team(literal), store=tmp_path / "t.db")


def test_an_http_server_that_is_not_there_is_a_one_line_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/mcp"
    with pytest.raises(ConfigError) as caught:
        Team(
            "t",
            [Agent("a", fn=uses_add, tools=["calc.add"])],
            mcp_servers={"calc": {"url": url, "timeout_s": 10}},
        )
    message = str(caught.value)
    assert "\n" not in message
    assert f"mcp_servers.calc: MCP server calc ({url}) could not be reached" in message
