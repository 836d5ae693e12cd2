"""Splitting MAD / MAST-Data raw logs into steps, by each framework's speaker markers.

MAD traces are whatever the multi-agent framework printed. Where a framework's
markers are recognised the log becomes one step per message; otherwise the
whole log is one step, so nothing is lost.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from mascope._safeload import IMPORT_LIMITS, loads_json
from mascope.errors import ConfigError

Split = list[tuple[str, str]]
"""(agent, content) pairs, in order."""

_LOGURU = re.compile(
    r"^\d{4}-\d\d-\d\d [\d:.]+ \| \w+\s*\| \S+ - (?:(?P<name>\w+)\((?P<role>[\w ]+)\): )?(?P<rest>.*)$",
    re.M,
)
_COMM_HEADER = re.compile(r"^\[[\d\- :]+\] FROM: (?P<sender>.+?) TO: .*$", re.M)
_NEW_MESSAGES = re.compile(r"^\[[\d\- :]+\] NEW MESSAGES:\s*$", re.M)
_SPEAKER_LINE = re.compile(r"^(?P<agent>[A-Za-z_][\w \-]{0,40}):[ \t]*(?P<first>.*)$")
_AUTOGEN = re.compile(r"^(?P<agent>[\w\-. ]{1,60}?) \(to (?P<to>[^)]+)\):\s*$", re.M)
_SEPARATOR = re.compile(r"^-{20,}\s*$", re.M)


def split_trace(trace: str) -> tuple[Split, str, dict[str, Any]]:
    """Steps, the name of the parser that matched, and facts found on the way
    (the task, the correct answer) as a dict."""
    stripped = trace.strip()
    if stripped.startswith("{"):
        try:
            data = loads_json(stripped, source="trace", limits=IMPORT_LIMITS)
        except (json.JSONDecodeError, ConfigError):
            data = None  # too deep or not JSON: split it as text below
        if isinstance(data, dict):
            found = _from_json(data)
            if found is not None:
                return found
    for parser in (_metagpt_comm_log, _autogen_text, _loguru_log):
        steps = parser(trace)
        if steps:
            return steps, parser.__name__.lstrip("_"), {}
    return [("trace", trace)], "whole", {}


def _from_json(data: dict[str, Any]) -> tuple[Split, str, dict[str, Any]] | None:
    facts: dict[str, Any] = {}
    problem = data.get("problem_statement") or data.get("prompt") or data.get("task")
    if isinstance(problem, list):
        problem = "\n".join(str(p) for p in problem)
    if isinstance(problem, str):
        facts["task"] = problem
    if isinstance(data.get("other_data"), dict):
        facts["other_data"] = data["other_data"]
    trajectory = data.get("trajectory") or data.get("messages") or data.get("history")
    if isinstance(trajectory, list) and trajectory and all(isinstance(m, dict) for m in trajectory):
        steps = [
            (str(m.get("name") or m.get("role") or "agent"), _content_text(m.get("content")))
            for m in trajectory
        ]
        return steps, "json-trajectory", facts
    content = data.get("content")
    if isinstance(content, str):
        steps = _loguru_log(content) or [("trace", content)]
        return steps, "json-loguru" if len(steps) > 1 else "json-content", facts
    return None


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(c) for c in content)
    if isinstance(content, str) and content.startswith("[") and content.endswith("]"):
        try:
            parsed = ast.literal_eval(content)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return content
        if isinstance(parsed, list):
            return "\n".join(str(c) for c in parsed)
    return "" if content is None else str(content)


def _loguru_log(text: str) -> Split:
    """MetaGPT's loguru output: `... | INFO | module:fn:line - Alice(Coder): to do X`."""
    matches = list(_LOGURU.finditer(text))
    if len(matches) < 2:
        return []
    steps: Split = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = (m.group("rest") + text[m.end() : end]).strip()
        steps.append((m.group("role") or "system", body))
    return steps


def _metagpt_comm_log(text: str) -> Split:
    """MetaGPT's communication log: blocks split by dashes, `FROM: X TO: Y` or
    `NEW MESSAGES:` followed by `Agent: content`."""
    if not (_COMM_HEADER.search(text) or _NEW_MESSAGES.search(text)):
        return []
    steps: Split = []
    for block in _SEPARATOR.split(text):
        block = block.strip()
        if not block:
            continue
        header = _COMM_HEADER.search(block)
        if header:
            _, _, content = block.partition("CONTENT:")
            steps.append((header.group("sender").strip(), content.strip() or block))
            continue
        if _NEW_MESSAGES.search(block):
            body = _NEW_MESSAGES.split(block, maxsplit=1)[-1].strip()
            first, _, rest = body.partition("\n")
            speaker = _SPEAKER_LINE.match(first)
            if speaker:
                steps.append(
                    (speaker.group("agent").strip(), (speaker.group("first") + "\n" + rest).strip())
                )
            else:
                steps.append(("unknown", body))
            continue
        if steps:
            agent, content = steps[-1]
            steps[-1] = (agent, f"{content}\n{block}")
        else:
            steps.append(("system", block))
    return steps if len(steps) > 1 else []


def _autogen_text(text: str) -> Split:
    """AutoGen/AG2 console output: `speaker (to recipient):` then the message."""
    matches = list(_AUTOGEN.finditer(text))
    if len(matches) < 2:
        return []
    steps: Split = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = _SEPARATOR.sub("", text[m.end() : end]).strip()
        steps.append((m.group("agent").strip(), body))
    return steps
