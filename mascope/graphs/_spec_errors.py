"""Pydantic validation errors turned into one line a team-file author can act on.

The line names the file, the path inside it (`topology.nodes[0]`), what was given
and the expected shape as a YAML snippet, never a class name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mascope.errors import ConfigError, did_you_mean

from ._shape import (
    describe,
    example_for,
    field_examples,
    flow,
    given,
    is_model,
    literals,
    union_members,
)

_ABSENT = object()
_TYPE_ERRORS = {
    "dict_type",
    "model_type",
    "model_attributes_type",
    "string_type",
    "int_type",
    "int_parsing",
    "int_from_float",
    "float_type",
    "float_parsing",
    "bool_type",
    "bool_parsing",
    "list_type",
    "is_instance_of",
}
_BUILTINS = {"str": str, "int": int, "float": float, "bool": bool}


@dataclass
class _Point:
    """Where an error points, resolved against the spec's types and the user's data."""

    parts: list[str] = field(default_factory=list)
    tp: Any = None
    value: Any = _ABSENT
    examples: list[Any] = field(default_factory=list)
    description: str | None = None
    parent: type[BaseModel] | None = None
    """The model whose key this is (for unknown keys: the allowed ones)."""
    wrong_branch: bool = False
    """The error is about a union alternative the user plainly did not mean."""

    @property
    def path(self) -> str:
        out = ""
        for p in self.parts:
            out += p if p.startswith("[") or not out else f".{p}"
        return out or "(top level)"

    @property
    def key(self) -> str:
        keys = [p for p in self.parts if not p.startswith("[")]
        return keys[-1] if keys else ""


def _branch(members: list[Any], tag: Any) -> Any:
    """The union alternative pydantic names by `tag` in an error location."""
    for m in members:
        if is_model(m):
            kind = m.model_fields.get("kind")
            if m.__name__ == tag or (kind is not None and tag in literals(kind.annotation)):
                return m
        elif _BUILTINS.get(str(tag)) is m or getattr(m, "__name__", None) == tag:
            return m
    return None


def _walk(root: type[BaseModel], loc: tuple[Any, ...], data: Any) -> _Point:
    point = _Point(tp=root, value=data, examples=[])
    i = 0
    while i < len(loc):
        step = loc[i]
        members = union_members(point.tp)
        if len(members) > 1:
            branch = _branch(members, step)
            if branch is None:
                return point
            i += 1
            value_is_mapping = isinstance(point.value, dict)
            if not value_is_mapping:
                return point  # a scalar where a mapping was one option: describe the union
            if not is_model(branch):
                point.wrong_branch = any(is_model(m) for m in members)
                return point
            point.tp = branch
            continue
        tp = members[0]
        if is_model(tp):
            name, info = next(
                ((n, f) for n, f in tp.model_fields.items() if (f.alias or n) == step),
                (None, None),
            )
            point.parts.append(str(step))
            point.parent = tp
            point.value = (
                point.value.get(step, _ABSENT) if isinstance(point.value, dict) else _ABSENT
            )
            if name is None or info is None:
                point.tp, point.examples, point.description = None, [], None
                return point
            point.tp = info.annotation
            point.examples = field_examples(tp, name, info) + [
                e.get(step) for e in point.examples if isinstance(e, dict) and step in e
            ]
            point.description = info.description
        elif get_origin(tp) is list and isinstance(step, int):
            point.parts.append(f"[{step}]")
            point.tp = get_args(tp)[0]
            point.value = (
                point.value[step]
                if isinstance(point.value, list) and step < len(point.value)
                else _ABSENT
            )
            point.examples = [x for e in point.examples if isinstance(e, list) for x in e]
            point.description = None
        elif get_origin(tp) is dict:
            point.parts.append(str(step))
            point.tp = get_args(tp)[1]
            point.value = (
                point.value.get(step, _ABSENT) if isinstance(point.value, dict) else _ABSENT
            )
            point.examples = [x for e in point.examples if isinstance(e, dict) for x in e.values()]
            point.description = None
        else:
            point.parts.append(str(step))
            return point
        i += 1
    return point


_PRIORITY = [
    "extra_forbidden",
    "invalid_key",
    "missing",
    "union_tag_invalid",
    "union_tag_not_found",
]


def spec_error(source: str, exc: ValidationError, data: Any, root: type[BaseModel]) -> ConfigError:
    """One `ConfigError` line for the most useful of `exc`'s errors."""
    resolved = [(err, _walk(root, tuple(err["loc"]), data)) for err in exc.errors()]
    meant = [r for r in resolved if not r[1].wrong_branch] or resolved

    def rank(item: tuple[ErrorDetails, _Point]) -> int:
        kind = item[0]["type"]
        return _PRIORITY.index(kind) if kind in _PRIORITY else len(_PRIORITY)

    err, point = min(meant, key=rank)
    return ConfigError(f"{source}: {point.path}: {_message(err, point)}")


def _message(err: ErrorDetails, point: _Point) -> str:
    kind = err["type"]
    value = point.value if point.value is not _ABSENT else err.get("input")
    if kind == "extra_forbidden":
        model = point.parent or BaseModel
        allowed = sorted(f.alias or n for n, f in model.model_fields.items())
        return f"unknown key{did_you_mean(point.key, allowed)}; allowed keys: {', '.join(allowed)}"
    if kind == "invalid_key":
        return f"keys must be text, got {given(err.get('input'))} as a key; quote it"
    if kind == "missing":
        return f"required key is missing{_why(point)}; add it, e.g. {_snippet(point)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        kinds = [str(k) for m in union_members(point.tp) if is_model(m) for k in _kinds(m)]
        got = (value or {}).get("kind") if isinstance(value, dict) else None
        if got is None:
            return (
                f"kind is missing; add kind: one of {', '.join(kinds)}, "
                f"e.g. {point.key}: {flow(example_for(point.tp, point.examples))}"
            )
        return (
            f"kind must be one of {', '.join(kinds)}, got {given(got)}"
            f"{did_you_mean(str(got), kinds)}"
        )
    if kind in _TYPE_ERRORS:
        return f"expected {describe(point.tp, point.examples)}, got {given(value)}"
    if kind == "literal_error":
        allowed = [str(v) for v in literals(point.tp)] or [
            m for m in re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        ]
        return (
            f"expected one of {', '.join(allowed)}, got {given(value)}"
            f"{did_you_mean(str(value), allowed)}"
        )
    if kind == "too_short":
        least = (err.get("ctx") or {}).get("min_length", 1)
        example = example_for(point.tp, point.examples)
        shape = f", e.g. {point.key}: {flow(example)}" if example is not None else ""
        return f"needs at least {least} item{'s' if least != 1 else ''}{shape}"
    if kind == "string_pattern_mismatch" and point.description:
        text = point.description.rstrip(".")
        return f"expected {text[:1].lower()}{text[1:]}, got {given(value)}"
    bounds = {
        "greater_than_equal": ("ge", "at least"),
        "greater_than": ("gt", "more than"),
        "less_than_equal": ("le", "at most"),
        "less_than": ("lt", "less than"),
    }
    if kind in bounds:
        key, words = bounds[kind]
        return f"must be {words} {(err.get('ctx') or {}).get(key)}, got {given(value)}"
    if kind == "value_error":  # our own validators' messages already say what is wrong
        return _plain(err["msg"].removeprefix("Value error, "))
    return f"{_plain(err['msg'])}, got {given(value)}"


def _kinds(model: type[BaseModel]) -> list[Any]:
    info = model.model_fields.get("kind")
    return literals(info.annotation) if info is not None else []


def _why(point: _Point) -> str:
    text = (point.description or "").strip().rstrip(".")
    return f" ({text[0].lower()}{text[1:]})" if text and len(text) <= 80 else ""


def _snippet(point: _Point) -> str:
    example = example_for(point.tp, point.examples)
    if example is None:
        return f"{point.key}: ..."
    return f"{point.key}: {flow(example)}"


_CLASS_NAME = re.compile(r"\b(?:instance of )?_?[A-Z][A-Za-z0-9]*(?:Spec|Model)\b")


def _plain(msg: str) -> str:
    """Pydantic's own wording, lower-cased and stripped of class names."""
    msg = _CLASS_NAME.sub("mapping", msg)
    return msg[:1].lower() + msg[1:]
