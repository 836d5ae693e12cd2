"""What a model was given at a step: its input messages, stored once per distinct text.

Consecutive turns of a conversation repeat most of their prompt (the system
prompt, the conversation so far), so storing each turn's messages whole grows
with turns x context. Instead each message's text is cut at line breaks into
parts, each part is stored once in the `blobs` table under a hash of its text,
and a step keeps only the ordered references (`Step.inputs`). Storage then
grows with the distinct text, not with the number of turns.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from ._redact import Redactor

PART_MIN_CHARS = 128
"""A line at least this long is a part of its own (with the line breaks after it)."""
PART_MAX_CHARS = 512
"""Shorter lines are grouped into parts of up to about this many characters."""
_CUT_EVERY = 4
"""Among short lines, about one in this many ends a part whatever came before it, so the
same lines are cut into the same parts in every prompt they appear in."""
GROUP_MARK = "*"
"""Marks a reference to a group: a stored text that is itself a list of references
(one per line), so a long prompt costs a step a few references, not one per part."""
_FANOUT = 8
"""About one in this many references ends a group; lists longer than this are grouped."""
_GROUP_MAX = 64
_MAX_DEPTH = 12
_LINE = re.compile(r"[^\n]*\n*|[^\n]+")


class InputMessage(BaseModel):
    """One message a model was sent, as recorded (secrets already masked)."""

    role: str
    content: str | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    tool_call_id: str | None = None


@functools.lru_cache(maxsize=16_384)
def blob_key(text: str) -> str:
    """The content address of a stored part: 128 bits of its SHA-256, base64url (22 characters)."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def split_parts(text: str) -> list[str]:
    """`text` cut after line breaks into parts that join back to exactly `text`.

    Where a cut falls depends on the line before it (and, in a long run of short
    lines, on the previous cut), not on where the text starts, so text that
    recurs in many prompts (a system prompt, an earlier message in the
    conversation) is cut the same way each time and so stored once. Short lines
    after the last cut stay separate parts: they are the growing end of a
    conversation, and grouped they would be stored again, a little longer, every turn.
    """
    parts: list[str] = []
    pending: list[str] = []
    size = 0
    for line in _LINE.findall(text):
        if not line:
            continue
        pending.append(line)
        size += len(line)
        if (
            len(line) >= PART_MIN_CHARS
            or size >= PART_MAX_CHARS
            # The text's last line never ends a group by its hash: a fixed closing
            # line ("Your turn.") would pull the newest lines into a new group each turn.
            or (
                line.endswith("\n")
                and zlib.crc32(line.encode("utf-8", "surrogatepass")) % _CUT_EVERY == 0
            )
        ):
            parts.append("".join(pending))
            pending, size = [], 0
    parts.extend(pending)
    return parts


def _group(entries: list[str], blobs: dict[str, str]) -> list[str]:
    """`entries` with runs of them replaced by references to stored groups, level by
    level, until at most a few are left.

    Cuts depend on the reference before them, so a run of parts that recurs turn
    after turn (the conversation so far) becomes the same groups each time.
    """
    while len(entries) > _FANOUT:
        grouped: list[str] = []
        pending: list[str] = []
        for i, entry in enumerate(entries):
            pending.append(entry)
            # The last entry never ends a group: it is usually the newest or a fixed
            # closing part, and either would make a new group every turn.
            if len(pending) >= _GROUP_MAX or (
                i < len(entries) - 1 and zlib.crc32(entry.encode()) % _FANOUT == 0
            ):
                if len(pending) > 1:
                    text = "\n".join(pending)
                    key = blob_key(text)
                    blobs[key] = text
                    grouped.append(GROUP_MARK + key)
                else:
                    grouped.append(entry)
                pending = []
        grouped.extend(pending)
        if len(grouped) == len(entries):
            break
        entries = grouped
    return entries


def _field(message: Any, name: str) -> Any:
    if isinstance(message, Mapping):
        return message.get(name)
    return getattr(message, name, None)


_ENCODED: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {}
_ENCODED_MOST = 2048


def _encoded(text: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """A message's (redacted) text as part references and the parts they need.

    Remembered, boundedly: every turn sends the same system prompt and task
    again, and cutting and hashing them each time was most of recording a step.
    """
    done = _ENCODED.get(text)
    if done is not None:
        return done
    blobs: dict[str, str] = {}
    keys = []
    for part in split_parts(text):
        key = blob_key(part)
        blobs[key] = part
        keys.append(key)
    done = (tuple(_group(keys, blobs)), blobs)
    if len(_ENCODED) >= _ENCODED_MOST:
        _ENCODED.clear()
    _ENCODED[text] = done
    return done


def encode_inputs(
    messages: Iterable[Any], redact: Redactor
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Messages (mappings or objects with role/content/...) as step references and
    the parts they need, `{key: text}`; every text is redacted before it is hashed."""
    refs: list[dict[str, Any]] = []
    blobs: dict[str, str] = {}
    for message in messages:
        ref: dict[str, Any] = {"role": str(_field(message, "role") or "")}
        content = _field(message, "content")
        if content is not None:
            parts, needed = _encoded(redact.text(str(content)))
            ref["parts"] = list(parts)
            blobs.update(needed)
        name = _field(message, "name")
        if name:
            ref["name"] = redact.text(str(name))
        calls = _field(message, "tool_calls")
        if calls:
            ref["tool_calls"] = redact.value(
                [c.model_dump() if hasattr(c, "model_dump") else dict(c) for c in calls]
            )
        call_id = _field(message, "tool_call_id")
        if call_id:
            ref["tool_call_id"] = redact.text(str(call_id))
        refs.append(ref)
    return refs, blobs


def _members(entry: str, blobs: Mapping[str, str]) -> list[str] | None:
    """The entries a group reference stands for (None if its text is not at hand)."""
    text = blobs.get(entry[len(GROUP_MARK) :])
    return None if text is None else text.split("\n")


def gather(
    refs: Iterable[Mapping[str, Any]], fetch: Callable[[list[str]], dict[str, str]]
) -> dict[str, str]:
    """Every stored text the references need, groups and parts, `{key: text}`;
    `fetch` reads a batch of keys (one call per level of grouping)."""
    found: dict[str, str] = {}
    frontier = [e for ref in refs for e in ref.get("parts") or ()]
    for _ in range(_MAX_DEPTH + 1):
        wanted = list(dict.fromkeys(e.removeprefix(GROUP_MARK) for e in frontier))
        wanted = [k for k in wanted if k not in found]
        if not wanted:
            break
        found.update(fetch(wanted))
        frontier = [
            member
            for e in frontier
            if e.startswith(GROUP_MARK)
            for member in _members(e, found) or ()
        ]
    return found


def _expand(entries: Iterable[str], blobs: Mapping[str, str], depth: int = 0) -> Iterator[str]:
    for entry in entries:
        members = _members(entry, blobs) if entry.startswith(GROUP_MARK) else None
        if members is None or depth >= _MAX_DEPTH:
            yield blobs.get(entry, f"[missing stored text {entry}]")
        else:
            yield from _expand(members, blobs, depth + 1)


def decode_inputs(
    refs: Sequence[Mapping[str, Any]] | None, blobs: Mapping[str, str]
) -> list[InputMessage]:
    """Step references back to messages; a text missing from `blobs` shows as a marker."""
    out = []
    for ref in refs or ():
        parts = ref.get("parts")
        content = None if parts is None else "".join(_expand(parts, blobs))
        out.append(
            InputMessage(
                role=str(ref.get("role", "")),
                content=content,
                name=ref.get("name"),
                tool_calls=list(ref.get("tool_calls") or []),
                tool_call_id=ref.get("tool_call_id"),
            )
        )
    return out


def check_blobs(blobs: Mapping[str, str]) -> str | None:
    """Why an imported `blobs` map is not one mascope wrote (a key that is not its
    text's hash), naming the key; None if every key checks out."""
    for key, text in blobs.items():
        if blob_key(text) != key:
            return f"blobs.{key[:40]}: is not the key of its text (keys are hashes of the text)"
    return None


def _missing(entries: list[Any], blobs: Mapping[str, str], depth: int = 0) -> str | None:
    for j, entry in enumerate(entries):
        if not isinstance(entry, str) or entry.removeprefix(GROUP_MARK) not in blobs:
            return f"[{j}]: {str(entry)[:40]!r} is not a key of the record's blobs"
        if entry.startswith(GROUP_MARK):
            if depth >= _MAX_DEPTH:
                return f"[{j}]: groups nest deeper than {_MAX_DEPTH} levels"
            problem = _missing(list(_members(entry, blobs) or []), blobs, depth + 1)
            if problem is not None:
                return f"[{j}] (a group){problem}"
    return None


def check_refs(refs: Any, blobs: Mapping[str, str]) -> str | None:
    """Why `refs` is not a valid `inputs` value given `blobs`, naming the field; None if it is."""
    if refs is None:
        return None
    if not isinstance(refs, list):
        return "inputs: must be a list of messages"
    for i, ref in enumerate(refs):
        where = f"inputs[{i}]"
        if not isinstance(ref, dict) or not isinstance(ref.get("role"), str):
            return f'{where}: must be an object with a "role" string'
        parts = ref.get("parts")
        if parts is not None:
            if not isinstance(parts, list):
                return f"{where}.parts: must be a list of keys of the record's blobs"
            problem = _missing(parts, blobs)
            if problem is not None:
                return f"{where}.parts{problem}"
        for name in ("name", "tool_call_id"):
            if ref.get(name) is not None and not isinstance(ref.get(name), str):
                return f"{where}.{name}: must be a string"
        calls = ref.get("tool_calls")
        if calls is not None and not (
            isinstance(calls, list) and all(isinstance(c, dict) for c in calls)
        ):
            return f"{where}.tool_calls: must be a list of objects"
    return None


__all__ = [
    "GROUP_MARK",
    "InputMessage",
    "blob_key",
    "check_blobs",
    "check_refs",
    "decode_inputs",
    "encode_inputs",
    "gather",
    "split_parts",
]
