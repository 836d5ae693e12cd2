"""Tool calling for endpoints without native tool support, through a JSON schema.

The model is constrained (or asked) to answer with one JSON object: either
`{"name": TOOL, "arguments": {...}}` to call a tool or `{"answer": ...}` to
reply. Earlier tool calls and results are rendered back as plain messages.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from ._types import Message, ToolCall, ToolChoice, ToolSpec


def tool_call_schema(
    tools: list[ToolSpec], choice: ToolChoice | None, answer_schema: dict[str, Any] | None
) -> dict[str, Any]:
    """The schema an answer must match under `choice`."""
    chosen = (
        [t for t in tools if t.name == choice]
        if choice not in (None, "auto", "required")
        else tools
    )
    variants: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": [t.name]},
                "arguments": t.parameters or {"type": "object"},
            },
            "required": ["name", "arguments"],
        }
        for t in chosen
    ]
    if choice in (None, "auto"):
        variants.append(
            {
                "type": "object",
                "properties": {"answer": answer_schema or {"type": "string"}},
                "required": ["answer"],
            }
        )
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def tool_instructions(tools: list[ToolSpec], choice: ToolChoice | None) -> str:
    lines = ["You can call these tools:"]
    for t in tools:
        lines.append(
            f"- {t.name}: {t.description or 'no description'} "
            f"Arguments (JSON schema): {json.dumps(t.parameters, ensure_ascii=False)}"
        )
    lines.append('To call a tool, reply with only {"name": "<tool>", "arguments": {...}}.')
    if choice in (None, "auto"):
        lines.append('To reply without a tool, answer with only {"answer": "<your reply>"}.')
    elif choice == "required":
        lines.append("You must call one of the tools now.")
    else:
        lines.append(f"You must call the tool {choice} now.")
    return "\n".join(lines)


def decode_tool_answer(value: Any) -> tuple[str | None, list[ToolCall]]:
    """Turn a schema-shaped answer into message content or a tool call."""
    if isinstance(value, dict) and "name" in value and "arguments" in value:
        args = value["arguments"] if isinstance(value["arguments"], dict) else {}
        call = ToolCall(id=f"call_{uuid.uuid4().hex[:12]}", name=str(value["name"]), arguments=args)
        return None, [call]
    if isinstance(value, dict) and "answer" in value:
        answer = value["answer"]
        return (answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)), []
    return json.dumps(value, ensure_ascii=False), []


def plain_history(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as role/content dicts with tool traffic rendered as text."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "assistant" and m.tool_calls:
            calls = [{"name": c.name, "arguments": c.arguments} for c in m.tool_calls]
            text = json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)
            out.append({"role": "assistant", "content": text})
        elif m.role == "tool":
            label = f"Result of tool {m.name}" if m.name else "Tool result"
            out.append({"role": "user", "content": f"{label}:\n{m.content or ''}"})
        else:
            out.append({"role": m.role, "content": m.content or ""})
    return out


def with_system_note(messages: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """Add `note` to the system message, creating one at the front if needed."""
    out = [dict(m) for m in messages]
    if out and out[0]["role"] == "system":
        out[0]["content"] = f"{out[0]['content']}\n\n{note}".strip()
    else:
        out.insert(0, {"role": "system", "content": note})
    return out
