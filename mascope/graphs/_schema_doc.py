"""The team file's reference page (docs/teams.md) and JSON Schema, generated from TeamSpec.

Both come from the pydantic models (their fields, types, defaults and descriptions),
so they cannot drift from what `load_team_file` accepts. Regenerate the page with
`mascope team docs > docs/teams.md` and the schema with
`mascope team schema > docs/team.schema.json`.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ._shape import flow, is_model, literals, model_example, union_members
from ._spec import TeamSpec

__all__ = ["team_json_schema", "team_reference", "team_schema_text"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def team_json_schema() -> dict[str, Any]:
    """JSON Schema of a team file, for editors (the YAML language server) and other tools."""
    schema = TeamSpec.model_json_schema(by_alias=True, mode="validation")
    titles = {model.__name__: _title(paths) for model, paths in _models().items()}
    for name, sub in schema.get("$defs", {}).items():
        if name in titles:
            sub["title"] = titles[name]  # editors show titles; keep them in YAML terms
    return {"$schema": JSON_SCHEMA_DIALECT, **schema, "title": "mascope team file"}


def team_schema_text() -> str:
    """`team_json_schema()` as the text `mascope team schema` prints."""
    return json.dumps(team_json_schema(), indent=2, ensure_ascii=False) + "\n"


def _models() -> dict[type[BaseModel], list[str]]:
    """Every model a team file can contain, with the YAML paths where it appears."""
    found: dict[type[BaseModel], list[str]] = {TeamSpec: [""]}

    def visit(model: type[BaseModel], path: str) -> None:
        for name, info in model.model_fields.items():
            key = info.alias or name
            for inner, suffix in _nested(info.annotation):
                where = (f"{path}.{key}" if path else key) + suffix
                kind = _kind(inner)
                shown = where + (f" (kind: {kind})" if kind else "")
                if inner in found:
                    found[inner].append(shown)
                else:
                    found[inner] = [shown]
                    visit(inner, where)

    visit(TeamSpec, "")
    return found


def _nested(tp: Any, suffix: str = "") -> list[tuple[type[BaseModel], str]]:
    out: list[tuple[type[BaseModel], str]] = []
    for member in union_members(tp):
        if is_model(member):
            out.append((member, suffix))
        elif get_origin(member) is list:
            out += _nested(get_args(member)[0], suffix + "[]")
        elif get_origin(member) is dict:
            out += _nested(get_args(member)[1], suffix + ".NAME")
    return out


def _kind(model: type[BaseModel]) -> str:
    info = model.model_fields.get("kind")
    values = literals(info.annotation) if info is not None else []
    return str(values[0]) if len(values) == 1 else ""


def _title(paths: list[str]) -> str:
    """A model's name in YAML terms: its path, or its key when it appears in several places."""
    if paths == [""]:
        return "team file"
    if len(paths) == 1:
        return paths[0]
    return paths[0].split(" (")[0].rsplit(".", 1)[-1].removesuffix("[]")


def _anchor(title: str) -> str:
    """The anchor GitHub gives a heading."""
    slug = re.sub(r"[^a-z0-9 _-]", "", title.lower())
    return slug.replace(" ", "-")


def _heading(paths: list[str]) -> str:
    title = _title(paths)
    if title == "team file":
        return "Top level"
    name, _, rest = title.partition(" (")
    return f"`{name}`" + (f" ({rest}" if rest else "")


def _link(model: type[BaseModel], links: dict[type[BaseModel], list[str]], text: str = "") -> str:
    title = text or _title(links[model]).split(" (")[0]
    return f"[{title}](#{_anchor(_heading(links[model]))})"


def _type(tp: Any, links: dict[type[BaseModel], list[str]]) -> str:
    members = union_members(tp)
    if len(members) > 1 and all(is_model(m) and _kind(m) for m in members):
        kinds = [_link(m, links, _kind(m)) for m in members]
        return f"mapping with `kind`: {', '.join(kinds[:-1])} or {kinds[-1]}"
    if len(members) > 1:
        return " or ".join(_type(m, links) for m in members)
    tp = members[0]
    values = literals(tp)
    if len(values) == 1:
        return f"`{values[0]}`"
    if values:
        return "one of " + ", ".join(f"`{v}`" for v in values)
    if is_model(tp):
        return _link(tp, links)
    origin = get_origin(tp)
    if origin is list:
        inner = _type(get_args(tp)[0], links)
        return f"list of {_PLURAL.get(inner, f'({inner})' if ' or ' in inner else inner)}"
    if origin is dict:
        value = _type(get_args(tp)[1], links)
        return "mapping" if value == "any" else f"mapping of name to {value}"
    return _SCALARS.get(tp, "any")


_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_PLURAL = {"string": "strings", "integer": "integers", "number": "numbers"}


def _limits(info: FieldInfo) -> str:
    words = []
    for meta in info.metadata:
        for attr, text in (
            ("ge", ">= {}"),
            ("gt", "> {}"),
            ("le", "<= {}"),
            ("lt", "< {}"),
            ("min_length", "at least {} item"),
            ("pattern", "matching `{}`"),
        ):
            value = getattr(meta, attr, None)
            if value is not None:
                words.append(text.format(value))
    return f", {', '.join(words)}" if words else ""


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        return "(see below)" if isinstance(value, BaseModel) else f"`{flow(value)}`"
    if info.default is PydanticUndefined:
        return "**required**"
    if info.default is None:
        return "none"
    if isinstance(info.default, str):
        return f"`{info.default}`" if info.default else '`""`'
    return f"`{json.dumps(info.default)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(model: type[BaseModel], links: dict[type[BaseModel], list[str]]) -> list[str]:
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, info in model.model_fields.items():
        key = info.alias or name
        lines.append(
            f"| `{key}` | {_type(info.annotation, links)}{_limits(info)} | {_default(info)} "
            f"| {_cell(info.description or '')} |"
        )
    return lines


def _example_files() -> list[Path]:
    return sorted(Path(str(files("mascope.examples"))).glob("*.yaml"))


def team_reference() -> str:
    """The markdown of docs/teams.md: a hand-written guide, then one table per part of a team."""
    links = _models()
    out = [INTRO.strip(), ""]
    out += ["## Examples", ""]
    out.append("Each runs with `mascope run examples/FILE --task ...`:")
    out.append("")
    for path in _example_files():
        spec_line = next(
            (
                line.split(":", 1)[1].strip()
                for line in path.read_text().splitlines()
                if line.startswith("description:")
            ),
            "",
        )
        out.append(f"- [`examples/{path.name}`](../examples/{path.name}): {spec_line}")
    graph = Path(str(files("mascope.examples").joinpath(GRAPH_EXAMPLE)))
    out += [
        "",
        f"A `graph` topology with conditional edges (`examples/{GRAPH_EXAMPLE}`):",
        "",
        "```yaml",
        graph.read_text().rstrip(),
        "```",
        "",
        "## Reference",
        "",
        "Generated from the models that validate team files; do not edit by hand.",
        "Keys not listed here are refused, with the closest allowed key suggested.",
        "",
    ]
    for model, paths in links.items():
        out += [f"### {_heading(paths)}", ""]
        doc = (model.__doc__ or "").strip().split("\n\n")[0]
        if doc:
            out += [" ".join(doc.split()), ""]
        if len(paths) > 1:
            out += ["Used at " + ", ".join(f"`{p.split(' (')[0]}`" for p in paths) + ".", ""]
        example = _model_example(model)
        if example:
            out += [f"For example: `{example}`", ""]
        out += [*_table(model, links), ""]
    return "\n".join(out).rstrip() + "\n"


def _model_example(model: type[BaseModel]) -> str:
    example = model_example(model)
    return flow(example) if example else ""


GRAPH_EXAMPLE = "research_graph.yaml"

INTRO = """
# Team files

<!-- Generated by `make docs` (`mascope team docs > docs/teams.md`) from
     mascope/graphs/_schema_doc.py and the team-file models: edit those, not this file. -->

A team file is YAML: the agents (roles), the verifiers that check their work,
the tools they may call, a topology that wires them together and the rules
for when a run stops. `mascope run TEAM.yaml --task "..."` runs it;
`mascope team check TEAM.yaml` validates it without running anything.

A complete small team: a writer drafts, a Python function checks the draft,
and a failed check sends the writer back with the feedback, up to three times.

```yaml
name: short-answers
description: One writer and a length check.
model: local
agents:
  - name: writer
    role: writer
    goal: Answer the question in one sentence.
    max_tokens: 80
verifiers:
  short:
    kind: python
    function: checks:is_short   # checks.py next to this file
topology:
  kind: pipeline
  stages:
    - agent: writer
      verifier: short
      max_rounds: 3
termination:
  budget:
    seconds: 120
```

with `checks.py` beside it:

```python
def is_short(candidate: str) -> tuple[bool, str]:
    return len(candidate) < 200, "shorten it to one sentence"
```

`function:` of agents and verifiers and the values under `tools:` name
`module:function` (or `package.module:function`). Modules in the team file's
folder are found without setting `PYTHONPATH`; that folder is searched first,
and only while the module is imported, so an import the module makes later,
inside a function, does not see it. A module already imported under the same
name (from another team's folder) is reused.

Mistakes are reported on one line that names the file, the path inside it,
what was given and what was expected, before any model loads:

```
team.yaml: topology.nodes[0]: expected a mapping like {name: researcher, agent: researcher}, got the string "researcher"
```

## Editor support

`mascope team schema` prints the JSON Schema of a team file (also kept at
[`docs/team.schema.json`](team.schema.json)). With the YAML language server
(VS Code's YAML extension, Neovim, Helix, ...) a first line naming it gives
completion, hover help and errors as you type:

```yaml
# yaml-language-server: $schema=./team.schema.json
name: my-team
```

Save it next to your team files with
`mascope team schema > team.schema.json`, or point the comment at the copy in
a mascope checkout (`$schema=/path/to/mascope/docs/team.schema.json`).
"""
