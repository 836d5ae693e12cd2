"""Structured answers: schemas in, validated values out, one repair on the way."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema
from pydantic import BaseModel, TypeAdapter, ValidationError

from ._types import Message

OutputType = type[Any] | dict[str, Any]
"""A pydantic model class, any type pydantic can validate, or a JSON schema dict."""


@dataclass(frozen=True)
class OutputSpec:
    """A requested answer shape: its JSON schema and how to validate a value."""

    name: str
    schema: dict[str, Any]
    validate: Callable[[Any], Any]
    """Returns the validated value or raises `ValueError` with a readable reason."""


_dict_specs: dict[str, OutputSpec] = {}


def output_spec(output: OutputType) -> OutputSpec:
    """Build the schema and validator for `output` (dict schemas are compiled once)."""
    if isinstance(output, dict):
        key = json.dumps(output, sort_keys=True)
        if key not in _dict_specs:
            if len(_dict_specs) > 256:
                _dict_specs.clear()
            _dict_specs[key] = _dict_spec(output)
        return _dict_specs[key]
    return _typed_spec(output)


def _dict_spec(output: dict[str, Any]) -> OutputSpec:
    try:
        jsonschema.validators.validator_for(output).check_schema(output)
    except jsonschema.SchemaError as exc:
        from mascope.errors import ConfigError

        raise ConfigError(f"the output schema is not a valid JSON schema: {exc.message}") from None
    problem = unresolved_ref(output)
    if problem:
        from mascope.errors import ConfigError

        raise ConfigError(f"the output schema is not usable: {problem}")
    checker = jsonschema.validators.validator_for(output)(output)

    def validate_dict(value: Any) -> Any:
        errors = sorted(checker.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            raise ValueError("; ".join(_describe_schema_error(e) for e in errors[:5]))
        return value

    return OutputSpec(str(output.get("title", "answer")), output, validate_dict)


def unresolved_ref(schema: dict[str, Any]) -> str | None:
    """The first `$ref` in `schema` that points nowhere, described; None if all resolve.

    jsonschema finds out only when a value reaches the reference, mid-run and
    as an internal error, so a schema is checked whole when it is loaded.
    """
    spec = referencing.jsonschema.specification_with(
        str(schema.get("$schema", "")), default=referencing.jsonschema.DRAFT202012
    )
    resolver = referencing.Registry().with_resource("", spec.create_resource(schema)).resolver()
    refs: list[str] = []
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "$id" in node and node is not schema:
                return None  # nested base URIs: leave resolution to jsonschema
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    for ref in refs:
        try:
            resolver.lookup(ref)
        except referencing.exceptions.Unresolvable:
            return (
                f"$ref {json.dumps(ref)[:80]} points to nothing in the schema; refer to a "
                'definition inside it, such as "#/$defs/Name" (other files and URLs are not read)'
            )
    return None


def _typed_spec(output: type[Any]) -> OutputSpec:
    if isinstance(output, type) and issubclass(output, BaseModel):
        model = output

        def validate_model(value: Any) -> Any:
            try:
                return model.model_validate(value)
            except ValidationError as exc:
                raise ValueError(_describe_validation_error(exc)) from None

        return OutputSpec(model.__name__, model.model_json_schema(), validate_model)

    adapter: TypeAdapter[Any] = TypeAdapter(output)

    def validate_type(value: Any) -> Any:
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            raise ValueError(_describe_validation_error(exc)) from None

    name = getattr(output, "__name__", "answer")
    return OutputSpec(name, adapter.json_schema(), validate_type)


def _describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "the answer"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _describe_schema_error(err: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "the answer"
    return f"{where}: {err.message}"


def extract_json(text: str) -> Any:
    """The first JSON value in `text`, tolerating code fences and chatter around it."""
    try:
        return _extract_json(text)
    except RecursionError:  # a model's answer is untrusted: deep nesting is a bad answer
        raise ValueError("the answer's JSON nests too deeply") from None


def _extract_json(text: str) -> Any:
    stripped = text.strip()
    if not stripped:
        raise ValueError("the answer was empty")
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    for i, ch in enumerate(stripped):
        if ch in "{[":
            try:
                value, _ = decoder.raw_decode(stripped, i)
            except json.JSONDecodeError:
                continue
            return value
    raise ValueError("the answer held no JSON value")


def parse_answer(text: str, spec: OutputSpec) -> Any:
    """Extract and validate; raises `ValueError` saying what was wrong."""
    try:
        value = extract_json(text)
    except ValueError as exc:
        raise ValueError(f"{exc}") from None
    return spec.validate(value)


def example_for(schema: dict[str, Any], root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A small value that has the shape `schema` asks for, to show the model."""
    root = root or schema
    if depth > 6:
        return None
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return example_for(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example_for(options[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: example_for(sub, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [example_for(schema.get("items", {}), root, depth + 1)]
    if kind == "string":
        return "..."
    if kind == "integer":
        return 0
    if kind == "number":
        return 0.0
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "..."


def schema_instructions(spec: OutputSpec) -> str:
    """Text telling the model what a valid answer looks like."""
    return (
        "Answer with one JSON value and nothing else. It must match this JSON schema:\n"
        f"{json.dumps(spec.schema, ensure_ascii=False)}\n"
        f"For example: {json.dumps(example_for(spec.schema), ensure_ascii=False)}"
    )


def repair_message(answer: str, reason: str, spec: OutputSpec, *, cut_off: bool = False) -> Message:
    """The follow-up that asks the model to fix an invalid structured answer."""
    if cut_off:
        # Shown short, with a nudge: a model shown all of a cut-off answer tends
        # to copy it and run out of tokens again.
        shown = answer if len(answer) <= 200 else answer[:200] + " ...[cut]"
        head = (
            f"Your previous answer could not be used: {reason}. "
            "Keep every text field to one or two short sentences.\n"
            f"Your answer began:\n{shown}\n\n"
        )
    else:
        # The answer itself is the turn just before this one: repeating it here
        # would double the request, and a small model's context is small.
        head = f"Your previous answer could not be used: {reason}.\n\n"
    return Message.user(head + schema_instructions(spec))
