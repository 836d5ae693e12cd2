"""Messages in OpenTelemetry spans, by whichever convention carries them.

GenAI `gen_ai.input.messages` / `gen_ai.output.messages` / `gen_ai.system_instructions`
(role + parts), the older `gen_ai.prompt` / `gen_ai.completion` attributes and
prompt/completion events, OpenLLMetry's indexed `gen_ai.prompt.N.*`, and
OpenInference's flattened `llm.input_messages.N.message.*`. All of it is
untrusted: JSON inside attributes is decoded with bounds, and what does not
decode stays text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mascope._safeload import IMPORT_LIMITS, loads_json

from ._spans import SpanRecord


def decode_json(value: Any) -> Any:
    """A JSON-encoded attribute decoded (bounded), or the value itself when it is not JSON."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or text[0] not in "[{":
        return value
    try:
        return loads_json(text, source="span attribute", limits=IMPORT_LIMITS)
    except Exception:  # untrusted text that only looks like JSON stays text
        return value


def as_text(value: Any) -> str:
    """Readable text of an attribute value (JSON stays JSON, compactly)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _genai_messages(value: Any) -> list[dict[str, Any]]:
    """`gen_ai.input.messages` / `gen_ai.output.messages` (role + parts) as chat messages."""
    items = decode_json(value)
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        return [{"role": "user", "content": as_text(items)}] if items else []
    out = []
    for item in items:
        m = decode_json(item)  # some emit an array of JSON-encoded messages
        if not isinstance(m, dict):
            out.append({"role": "user", "content": as_text(m)})
            continue
        message: dict[str, Any] = {"role": str(m.get("role") or "")}
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        parts = m.get("parts")
        if parts is None and "content" in m:  # OpenAI-style messages (the older gen_ai.prompt)
            parts = [{"type": "text", "content": m["content"]}]
            calls = [_openai_call(c) for c in m.get("tool_calls") or [] if isinstance(c, dict)]
            if m.get("tool_call_id"):
                message["tool_call_id"] = str(m["tool_call_id"])
        for p in parts if isinstance(parts, list) else []:
            if not isinstance(p, dict):
                texts.append(as_text(p))
                continue
            kind = p.get("type")
            if kind == "tool_call":
                calls.append(
                    {"id": p.get("id"), "name": p.get("name"), "arguments": p.get("arguments")}
                )
            elif kind == "tool_call_response":
                message["tool_call_id"] = str(p.get("id") or "")
                texts.append(as_text(p.get("response")))
            elif "content" in p:
                texts.append(as_text(p["content"]))
        message["content"] = "\n".join(t for t in texts if t)
        if calls:
            message["tool_calls"] = calls
        if m.get("name"):
            message["name"] = str(m["name"])
        if m.get("finish_reason"):
            message["finish_reason"] = str(m["finish_reason"])
        out.append(message)
    return out


def _openai_call(c: dict[str, Any]) -> dict[str, Any]:
    fn: dict[str, Any] = c["function"] if isinstance(c.get("function"), dict) else c
    return {"id": c.get("id"), "name": fn.get("name"), "arguments": fn.get("arguments")}


def _system_instructions(value: Any) -> list[dict[str, Any]]:
    parts = decode_json(value)
    if isinstance(parts, list):
        text = "\n".join(
            as_text(p.get("content")) if isinstance(p, dict) else as_text(p) for p in parts
        )
    else:
        text = as_text(parts)
    return [{"role": "system", "content": text}] if text else []


_INDEXED = re.compile(r"^(?P<i>\d+)\.(?P<rest>.+)$")


def _indexed(a: dict[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """Flattened `prefix.N.rest` attributes grouped by N: {N: {rest: value}}."""
    out: dict[int, dict[str, Any]] = {}
    for key, value in a.items():
        if key.startswith(prefix):
            m = _INDEXED.match(key[len(prefix) :])
            if m:
                out.setdefault(int(m["i"]), {})[m["rest"]] = value
    return out


def _openinference_messages(a: dict[str, Any], side: str) -> list[dict[str, Any]]:
    out = []
    for _, f in sorted(_indexed(a, f"llm.{side}_messages.").items()):
        message: dict[str, Any] = {"role": str(f.get("message.role") or "")}
        content = f.get("message.content")
        if content is None:
            parts = _indexed(f, "message.contents.")
            content = "\n".join(
                as_text(p.get("message_content.text")) for _, p in sorted(parts.items())
            )
        message["content"] = as_text(content)
        numbered = {
            int(k[len("function.") :]): v
            for k, v in f.items()
            if k.startswith("function.") and k[len("function.") :].isdigit() and len(k) < 20
        }
        results = [decode_json(v) for _, v in sorted(numbered.items())]
        if not message["content"] and results:  # AutoGen's tool results: {name, content, call_id}
            message["content"] = "\n".join(
                as_text(r.get("content")) if isinstance(r, dict) else as_text(r) for r in results
            )
            ids = [str(r["call_id"]) for r in results if isinstance(r, dict) and r.get("call_id")]
            if ids:
                message["tool_call_id"] = ids[0]
        calls = [
            {
                "id": c.get("tool_call.id"),
                "name": c.get("tool_call.function.name"),
                "arguments": c.get("tool_call.function.arguments"),
            }
            for _, c in sorted(_indexed(f, "message.tool_calls.").items())
        ]
        if f.get("message.function_call_name"):
            calls.append(
                {
                    "id": None,
                    "name": f["message.function_call_name"],
                    "arguments": f.get("message.function_call_arguments_json"),
                }
            )
        if calls:
            message["tool_calls"] = calls
        if f.get("message.tool_call_id"):
            message["tool_call_id"] = str(f["message.tool_call_id"])
        if f.get("message.name"):
            message["name"] = str(f["message.name"])
        out.append(message)
    return out


def _traceloop_messages(a: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """OpenLLMetry's older indexed `gen_ai.prompt.N.*` / `gen_ai.completion.N.*`."""
    out = []
    for _, f in sorted(_indexed(a, prefix).items()):
        message: dict[str, Any] = {
            "role": str(f.get("role") or ""),
            "content": as_text(f.get("content")),
        }
        calls = [
            {"id": c.get("id"), "name": c.get("name"), "arguments": c.get("arguments")}
            for _, c in sorted(_indexed(f, "tool_calls.").items())
        ]
        if calls:
            message["tool_calls"] = calls
        out.append(message)
    return out


EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
    "gen_ai.choice": "assistant",
}


def _event_messages(span: SpanRecord) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Messages carried by the older prompt/completion span events."""
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for e in span.events:
        if e.name == "gen_ai.content.prompt":
            inputs += _genai_messages(e.attributes.get("gen_ai.prompt"))
        elif e.name == "gen_ai.content.completion":
            outputs += _genai_messages(e.attributes.get("gen_ai.completion"))
        elif e.name in EVENT_ROLES:
            body = decode_json(e.attributes.get("gen_ai.event.content"))
            body = body if isinstance(body, dict) else dict(e.attributes)
            if isinstance(body.get("message"), dict):  # gen_ai.choice: {"message": {...}}
                body = body["message"]
            message: dict[str, Any] = {
                "role": str(body.get("role") or EVENT_ROLES[e.name]),
                "content": as_text(body.get("content")),
            }
            calls = [_openai_call(c) for c in body.get("tool_calls") or [] if isinstance(c, dict)]
            if calls:
                message["tool_calls"] = calls
            if body.get("id") and e.name == "gen_ai.tool.message":
                message["tool_call_id"] = str(body["id"])
            (outputs if e.name == "gen_ai.choice" else inputs).append(message)
    return inputs, outputs


INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
MESSAGE_KEYS = (
    INPUT_MESSAGES,
    OUTPUT_MESSAGES,
    SYSTEM_INSTRUCTIONS,
    "gen_ai.prompt",
    "gen_ai.completion",
)
MESSAGE_PREFIXES = (
    "llm.input_messages.",
    "llm.output_messages.",
    "gen_ai.prompt.",
    "gen_ai.completion.",
)


def messages(span: SpanRecord) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A model span's input and output messages, by whichever convention carries them."""
    a = span.attributes
    given = _genai_messages(a.get(INPUT_MESSAGES))
    said = {m["content"] for m in given if m.get("role") == "system"}
    # Some instrumentations also keep the system prompt among the input messages.
    inputs = [m for m in _system_instructions(a.get(SYSTEM_INSTRUCTIONS)) if m["content"] not in said]  # fmt: skip
    inputs += given
    outputs = _genai_messages(a.get(OUTPUT_MESSAGES))
    inputs += (
        _genai_messages(a.get("gen_ai.prompt")) if isinstance(a.get("gen_ai.prompt"), str) else []
    )
    if isinstance(a.get("gen_ai.completion"), str):
        outputs += _genai_messages(a["gen_ai.completion"])
    inputs += _openinference_messages(a, "input")
    outputs += _openinference_messages(a, "output")
    inputs += _traceloop_messages(a, "gen_ai.prompt.")
    outputs += _traceloop_messages(a, "gen_ai.completion.")
    ev_in, ev_out = _event_messages(span)
    return inputs + ev_in, outputs + ev_out


def message_text(items: Sequence[dict[str, Any]], *, calls: bool = True) -> str:
    """The text of messages, with their tool calls written out unless `calls` is False."""
    texts = []
    for m in items:
        if m.get("content"):
            texts.append(str(m["content"]))
        for c in m.get("tool_calls") or [] if calls else []:
            texts.append(f"[tool call] {c.get('name')}({as_text(c.get('arguments'))})")
    return "\n".join(texts)


# -- writing them (the exporter) -------------------------------------------------------


def text_part(text: str) -> dict[str, Any]:
    """A GenAI message part holding text."""
    return {"type": "text", "content": text}


def tool_call_part(call: Mapping[str, Any]) -> dict[str, Any]:
    """A GenAI `tool_call` part from a recorded call (`id`, `name`, `arguments`)."""
    return {
        "type": "tool_call",
        "id": call.get("id"),
        "name": call.get("name"),
        "arguments": call.get("arguments"),
    }


def genai_input(
    chat: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Chat messages (role, content, tool_calls, tool_call_id, name) in the GenAI JSON
    forms: the parts of `gen_ai.system_instructions` and the `gen_ai.input.messages`."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for m in chat:
        role = str(m.get("role") or "")
        content = m.get("content")
        if role == "system":
            if content:
                system.append(text_part(str(content)))
            continue
        parts: list[dict[str, Any]] = []
        if role == "tool":
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": m.get("tool_call_id"),
                    "response": "" if content is None else str(content),
                }
            )
        else:
            if content:
                parts.append(text_part(str(content)))
            parts += [tool_call_part(c) for c in m.get("tool_calls") or []]
        message: dict[str, Any] = {"role": role, "parts": parts}
        if m.get("name"):
            message["name"] = str(m["name"])
        out.append(message)
    return system, out


def genai_output(
    text: str | None,
    calls: Sequence[Mapping[str, Any]] = (),
    *,
    finish_reason: str | None = None,
) -> list[dict[str, Any]]:
    """One assistant answer as `gen_ai.output.messages` (empty when there is none)."""
    if text is None and not calls:
        return []
    parts = [text_part(text)] if text or (text is not None and not calls) else []
    parts += [tool_call_part(c) for c in calls]
    return [
        {
            "role": "assistant",
            "parts": parts,
            "finish_reason": finish_reason or ("tool_call" if calls else "stop"),
        }
    ]


__all__ = [
    "EVENT_ROLES",
    "INPUT_MESSAGES",
    "MESSAGE_KEYS",
    "MESSAGE_PREFIXES",
    "OUTPUT_MESSAGES",
    "SYSTEM_INSTRUCTIONS",
    "as_text",
    "decode_json",
    "genai_input",
    "genai_output",
    "message_text",
    "messages",
    "text_part",
    "tool_call_part",
]
