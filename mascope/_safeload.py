"""Bounded YAML and JSON parsing for everything mascope reads from a user or a file.

A few hundred bytes of YAML with nested aliases ("billion laughs") expand to
billions of nodes once anything walks them, and a deeply nested document
overflows Python's stack in the parser. So every load here is bounded before
any Python object is built: the file's size, its nesting depth, its node count
and, for YAML, how many aliases it uses and how large the document would be
with every alias written out. Going past a bound is a one-line `ConfigError`
naming the source and the limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mascope.errors import ConfigError

__all__ = [
    "IMPORT_LIMITS",
    "SCHEMA_LIMITS",
    "SPEC_LIMITS",
    "Limits",
    "check_depth",
    "check_schema_size",
    "loads_json",
    "loads_yaml",
    "read_text",
]


@dataclass(frozen=True)
class Limits:
    """How large a document may be."""

    max_bytes: int = 4 * 1024 * 1024
    """Size of the text, in bytes."""
    max_depth: int = 64
    """Nesting of lists and mappings."""
    max_nodes: int = 200_000
    """Values (scalars, lists, mappings), counting what aliases expand to."""
    max_aliases: int = 100
    """YAML alias uses (`*name`)."""
    max_chars: int = 16 * 1024 * 1024
    """Characters of scalar text, counting what aliases expand to."""


SPEC_LIMITS = Limits()
"""Team files, taxonomies, scripted replies, price tables, schemas."""

IMPORT_LIMITS = Limits(
    max_bytes=1024 * 1024 * 1024, max_depth=200, max_nodes=50_000_000, max_chars=2**40
)
"""Imported traces: large files are normal, deep ones are not."""

SCHEMA_LIMITS = Limits(max_depth=32, max_nodes=20_000)
"""JSON schemas given to agents and verifiers: they go into prompts and validators."""


class _LimitExceeded(Exception):
    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def _too_big(source: str, what: str) -> ConfigError:
    return ConfigError(f"{source}: {what}; simplify the file or split it")


def read_text(path: str | Path, *, what: str, limits: Limits = SPEC_LIMITS) -> str:
    """The text of a user's file, refusing a missing, unreadable or oversized one in one line."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise _too_big(
                f"{what} {path}",
                f"is {size:,} bytes, over the limit of {limits.max_bytes:,} bytes",
            )
        with path.open("rb") as fh:
            raw = fh.read(limits.max_bytes + 1)  # a file that grew since stat() still stops here
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder, not a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > limits.max_bytes:
        raise _too_big(f"{what} {path}", f"is over the limit of {limits.max_bytes:,} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None


# -- YAML ---------------------------------------------------------------------


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that measures the node graph while composing it, before constructing.

    PyYAML shares an aliased node instead of copying it, so the billion laughs
    costs nothing to compose; it explodes later, when the objects are walked.
    Counting each node's expanded size as it is composed stops it here.
    """

    def __init__(self, stream: str, limits: Limits):
        super().__init__(stream)
        self.limits = limits
        self._depth = 0
        self._aliases = 0
        self._open_anchors: list[str | None] = []
        self._size: dict[int, tuple[int, int, int]] = {}  # id(node) -> (nodes, chars, depth)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        limits = self.limits
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > limits.max_aliases:
                raise _LimitExceeded(f"uses more than {limits.max_aliases} aliases (*name)")
            if event.anchor in self._open_anchors:
                raise _LimitExceeded(f"alias *{event.anchor} refers to a value that contains it")
            return super().compose_node(parent, index)
        if not isinstance(event, CollectionStartEvent):
            node = super().compose_node(parent, index)
            self._measure(node)
            return node
        # Checked before descending: PyYAML composes recursively, so a deep
        # document would otherwise overflow the stack first.
        self._depth += 1
        if self._depth > limits.max_depth:
            raise _LimitExceeded(f"nests deeper than {limits.max_depth} levels")
        self._open_anchors.append(event.anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._open_anchors.pop()
            self._depth -= 1
        self._measure(node)
        return node

    def _measure(self, node: Node | None) -> None:
        if node is None:
            return
        if isinstance(node, ScalarNode):
            nodes, chars, depth = 1, len(node.value), 0
        else:
            if isinstance(node, SequenceNode):
                children = list(node.value)
            elif isinstance(node, MappingNode):
                children = [n for pair in node.value for n in pair]
            else:  # pragma: no cover - PyYAML has no other node kinds
                children = []
            nodes, chars, depth = 1, 0, 1
            for child in children:
                n, c, d = self._size.get(id(child), (1, 0, 0))
                nodes += n
                chars += c
                depth = max(depth, d + 1)
        limits = self.limits
        if nodes > limits.max_nodes:
            raise _LimitExceeded(
                f"holds more than {limits.max_nodes:,} values once its aliases are expanded"
            )
        if chars > limits.max_chars:
            raise _LimitExceeded(
                f"holds more than {limits.max_chars:,} characters once its aliases are expanded"
            )
        if depth > limits.max_depth:
            raise _LimitExceeded(
                f"nests deeper than {limits.max_depth} levels once its aliases are expanded"
            )
        self._size[id(node)] = (nodes, chars, depth)


def loads_yaml(text: str, *, source: str, limits: Limits = SPEC_LIMITS, kind: str = "YAML") -> Any:
    """Parse YAML (or JSON) text within `limits`; any failure is one `ConfigError` line."""
    if len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise _too_big(source, f"is over the limit of {limits.max_bytes:,} bytes")
    try:
        loader = _BoundedLoader(text, limits)  # the reader refuses control characters here
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid {kind}: {exc}") from None
    try:
        return loader.get_single_data()
    except _LimitExceeded as exc:
        raise _too_big(source, exc.what) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(f"{source}: not valid {kind}{where}: {problem}") from None
    except RecursionError:  # a bound above should always come first; never a traceback
        raise _too_big(source, "nests too deeply to read") from None
    finally:
        loader.dispose()


# -- JSON ---------------------------------------------------------------------


def check_depth(value: Any, *, source: str, limits: Limits = SPEC_LIMITS) -> None:
    """Refuse a parsed value nested deeper than `limits.max_depth` or with too many values.

    Walks with an explicit stack, so it works on any value without recursing.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > limits.max_nodes:
            raise _too_big(source, f"holds more than {limits.max_nodes:,} values")
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > limits.max_depth:
            raise _too_big(source, f"nests deeper than {limits.max_depth} levels")
        stack.extend((c, depth + 1) for c in children)


def loads_json(text: str | bytes, *, source: str, limits: Limits = SPEC_LIMITS) -> Any:
    """Parse JSON within `limits`; a depth or size over the bound is one `ConfigError` line.

    `json.JSONDecodeError` is left to the caller, which knows how to name the
    place in its file.
    """
    if len(text) > limits.max_bytes:
        raise _too_big(source, f"is over the limit of {limits.max_bytes:,} bytes")
    try:
        value = json.loads(text)
    except RecursionError:
        raise _too_big(source, "nests too deeply to read") from None
    check_depth(value, source=source, limits=limits)
    return value


def check_schema_size(schema: Any) -> Any:
    """`schema` unchanged, or `ValueError` (for pydantic validators) when it is too deep or large."""
    if schema is not None:
        try:
            check_depth(schema, source="schema", limits=SCHEMA_LIMITS)
        except ConfigError as exc:
            raise ValueError(str(exc).removesuffix("; simplify the file or split it")) from None
    return schema
