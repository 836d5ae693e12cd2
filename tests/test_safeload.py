"""Bounded YAML/JSON: aliases, nesting and size cannot hang, exhaust memory or crash mascope."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mascope._safeload import SPEC_LIMITS, loads_json, loads_yaml
from mascope.agents import AgentSpec
from mascope.agents._verifiers import JsonSchemaCheck
from mascope.cli import app
from mascope.errors import ConfigError
from mascope.graphs import load_team_file

from .graphs.test_spec import GOOD
from .test_cli import assert_one_line_error

runner = CliRunner()


def laughs(levels: int = 9, width: int = 9, indent: str = "  ") -> str:
    """The "billion laughs": each level lists the one before `width` times (637 bytes at 9x9)."""
    lines = [f'{indent}l0: &l0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines)


def team_text(extra_agent: str) -> str:
    return (
        yaml.safe_dump({k: v for k, v in GOOD.items() if k != "agents"})
        + "agents:\n"
        + "  - {name: a, function: 'tests.graphs.helpers:counter'}\n"
        + "  - {name: b, role: checker}\n"
        + extra_agent
    )


def test_billion_laughs_in_an_output_schema_is_refused_at_once(tmp_path: Path) -> None:
    schema = laughs(indent="        ")
    path = tmp_path / "team.yaml"
    path.write_text(
        team_text(
            "  - name: c\n    output_schema:\n      type: object\n      x-bomb:\n" + schema + "\n"
        )
    )
    db = tmp_path / "never.db"
    result = runner.invoke(app, ["run", str(path), "--task", "x", "--db", str(db)])
    assert_one_line_error(result, str(path), "aliases")
    assert not db.exists() and list(tmp_path.iterdir()) == [path]


def test_billion_laughs_under_a_verifier_schema(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    data = dict(GOOD, verifiers={"v": {"kind": "json_schema", "schema": {"type": "object"}}})
    text = yaml.safe_dump(data).replace(
        "schema:\n      type: object",
        "schema:\n      type: object\n      x-bomb:\n" + laughs(indent="        "),
    )
    assert "x-bomb" in text
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_team_file(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_a_few_aliases_and_merge_keys_still_work(tmp_path: Path) -> None:
    text = yaml.safe_dump(GOOD) + "x-defaults: &d {role: helper}\n"
    data = loads_yaml(text + "x-other:\n  <<: *d\n  goal: g\n", source="t")
    assert data["x-other"] == {"role": "helper", "goal": "g"}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: &a [*a]\n", "refers to a value that contains it"),
        ("[" * 5000, "nests deeper than 64"),
        ("{a: " * 3000 + "1" + "}" * 3000, "nests deeper than 64"),
        ("- " * 200 + "x\n", "nests deeper than 64"),
        (
            "a: &a " + "[" * 50 + "1" + "]" * 50 + "\nb: &b " + "[" * 20 + "*a" + "]" * 20,
            "once its aliases",
        ),
        ("a: &a x\n" + "".join(f"k{i}: *a\n" for i in range(101)), "more than 100 aliases"),
    ],
)
def test_yaml_bounds_are_one_line_errors(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads_yaml(text, source="f.yaml")
    message = str(info.value)
    assert message.startswith("f.yaml: ") and needle in message and "\n" not in message


def test_deeply_nested_team_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("name: t\nagents: " + "[" * 3000 + "]" * 3000 + "\n")
    result = runner.invoke(app, ["run", str(path), "--task", "x", "--db", str(tmp_path / "x.db")])
    assert_one_line_error(result, str(path), "nests deeper than 64 levels")
    assert list(tmp_path.iterdir()) == [path]


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * SPEC_LIMITS.max_bytes + "\n")
    with pytest.raises(ConfigError, match="over the limit of 4,194,304 bytes"):
        load_team_file(path)


def test_json_depth_is_checked_without_recursing() -> None:
    with pytest.raises(ConfigError, match="nests"):
        loads_json("[" * 100_000 + "]" * 100_000, source="f.json")
    with pytest.raises(ConfigError, match="nests deeper than 64"):
        loads_json(json.dumps(nested(65)), source="f.json")
    assert loads_json(json.dumps(nested(63)), source="f.json") == nested(63)


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_schemas_given_from_python_are_bounded() -> None:
    deep = {"type": "array", "items": {}}
    node = deep["items"]
    for _ in range(40):
        node["items"] = {}  # type: ignore[index]
        node = node["items"]  # type: ignore[index]
    with pytest.raises(ValueError, match="nests deeper than 32"):
        AgentSpec(name="a", output_schema=deep)
    with pytest.raises(ConfigError, match=r"verifier v: .*nests deeper than 32"):
        JsonSchemaCheck(deep, name="v")
    assert AgentSpec(name="a", output_schema={"type": "object"}).output_schema == {"type": "object"}


def test_script_and_price_files_are_bounded(tmp_path: Path) -> None:
    bomb = tmp_path / "replies.yaml"
    bomb.write_text("x:\n" + laughs() + "\n")
    result = runner.invoke(app, ["chat", "hi", "-m", f"scripted:{bomb}"])
    assert_one_line_error(result, str(bomb), "aliases")
    from mascope.models._pricing import PriceTable

    with pytest.raises(ConfigError, match="aliases"):
        PriceTable.from_file(bomb)
