"""Spec types in YAML terms: what errors and docs/teams.md say a key expects.

Users write YAML, so they should read `a mapping like {name: researcher, agent: researcher}`,
never a pydantic class name. Examples come from the models themselves (a field's
`examples`, or the model's `json_schema_extra` examples), so they cannot drift.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

__all__ = [
    "describe",
    "example_for",
    "field_examples",
    "flow",
    "given",
    "is_model",
    "literals",
    "model_example",
    "union_members",
]


def union_members(tp: Any) -> list[Any]:
    """The alternatives of a union (without None), or `[tp]` for anything else."""
    tp = _strip_annotated(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return [m for m in get_args(tp) if m is not type(None)]
    return [tp]


def _strip_annotated(tp: Any) -> Any:
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    return tp


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _has_kind(tp: Any) -> bool:
    return (
        is_model(tp)
        and "kind" in tp.model_fields
        and bool(literals(tp.model_fields["kind"].annotation))
    )


def literals(tp: Any) -> list[Any]:
    """The allowed values of a `Literal` type, or `[]`."""
    tp = _strip_annotated(tp)
    return list(get_args(tp)) if get_origin(tp) is Literal else []


def model_example(model: type[BaseModel]) -> dict[str, Any] | None:
    """The first example a model declares in `json_schema_extra`, if any."""
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    if isinstance(examples, list) and examples and isinstance(examples[0], dict):
        return dict(examples[0])
    return None


def field_examples(model: type[BaseModel], name: str, info: FieldInfo) -> list[Any]:
    """Examples for one field: its own, then its value in the model's example."""
    out = list(info.examples or [])
    example = model_example(model)
    key = info.alias or name
    if example is not None and key in example:
        out.append(example[key])
    return out


def _fits(tp: Any, value: Any) -> bool:
    try:
        TypeAdapter(tp).validate_python(value)
    except (ValidationError, TypeError, ValueError):
        return False
    return True


def example_for(tp: Any, candidates: list[Any] | None = None) -> Any:
    """A value of type `tp`: the first candidate that fits, else one built from the types."""
    for value in candidates or []:
        if value is not None and _fits(tp, value):
            return value
    members = union_members(tp)
    if len(members) > 1:
        for m in members:
            made = example_for(m, candidates)
            if made is not None:
                return made
        return None
    tp = members[0]
    if is_model(tp):
        return model_example(tp)
    if literals(tp):
        return literals(tp)[0]
    origin = get_origin(tp)
    if origin is list:
        inner = example_for(get_args(tp)[0] if get_args(tp) else Any)
        return [inner] if inner is not None else None
    if origin is dict:
        args = get_args(tp)
        inner = example_for(args[1] if len(args) == 2 else Any)
        return {"name": inner} if inner is not None else None
    return {bool: True, int: 3, float: 0.5}.get(tp)


def describe(tp: Any, candidates: list[Any] | None = None) -> str:
    """What a value of type `tp` looks like in YAML, with an example where one helps."""
    members = union_members(tp)
    kinds = [literals(m.model_fields["kind"].annotation) for m in members if _has_kind(m)]
    if len(members) > 1 and len(kinds) == len(members):
        # a tagged union (topology): one sentence, not one per alternative
        names = [str(k) for ks in kinds for k in ks]
        example = example_for(tp, candidates)
        shown = f", like {flow(example)}" if example is not None else ""
        return f"a mapping with kind: {' | '.join(names)}{shown}"
    if len(members) > 1:
        return " or ".join(
            describe(m, [c for c in candidates or [] if _fits(m, c)]) for m in members
        )
    tp = members[0]
    values = literals(tp)
    if values:
        return "one of " + ", ".join(str(v) for v in values)
    example = example_for(tp, candidates)
    shown = f" like {flow(example)}" if example is not None else ""
    if is_model(tp):
        return f"a mapping{shown}"
    origin = get_origin(tp)
    if origin is list:
        return f"a list{shown}"
    if origin is dict:
        return f"a mapping{shown}"
    if tp is str:
        return f"a string{shown}"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "a whole number"
    if tp is float:
        return "a number"
    return "a value"


def flow(value: Any) -> str:
    """A value as one line of YAML flow style: `{name: researcher, agent: researcher}`."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return text.removesuffix("...").strip()


def given(value: Any) -> str:
    """What the user wrote, named the way YAML would: `the string "researcher"`, `a list`."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return 'the string "' + shown.replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"
