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
import hashlib
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
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
_LINE = re.compile(r"[^\n]*\n*|[^\n]+")


class InputMessage(BaseModel):
    """One message a model was sent, as recorded (secrets already masked)."""

    role: str
    content: str | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    tool_call_id: str | None = None


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


def _field(message: Any, name: str) -> Any:
    if isinstance(message, Mapping):
        return message.get(name)
    return getattr(message, name, None)


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
            keys = []
            for part in split_parts(redact.text(str(content))):
                key = blob_key(part)
                blobs[key] = part
                keys.append(key)
            ref["parts"] = keys
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
            ref["tool_call_id"] = str(call_id)
        refs.append(ref)
    return refs, blobs


def blob_keys(refs: Iterable[Mapping[str, Any]] | None) -> list[str]:
    """Every part key the references use, in first-use order, once each."""
    seen: dict[str, None] = {}
    for ref in refs or ():
        for key in ref.get("parts") or ():
            seen[key] = None
    return list(seen)


def decode_inputs(
    refs: Sequence[Mapping[str, Any]] | None, blobs: Mapping[str, str]
) -> list[InputMessage]:
    """Step references back to messages; a part missing from `blobs` shows as a marker."""
    out = []
    for ref in refs or ():
        parts = ref.get("parts")
        content = (
            None
            if parts is None
            else "".join(blobs.get(k, f"[missing stored text {k}]") for k in parts)
        )
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
            for j, key in enumerate(parts):
                if not isinstance(key, str) or key not in blobs:
                    return (
                        f"{where}.parts[{j}]: {str(key)[:40]!r} is not a key of the record's blobs"
                    )
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
    "InputMessage",
    "blob_key",
    "blob_keys",
    "check_refs",
    "decode_inputs",
    "encode_inputs",
    "split_parts",
]
