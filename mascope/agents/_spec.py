"""Agents as roles: what an agent is for, rendered into its system prompt."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mascope._safeload import check_schema_size


class AgentSpec(BaseModel):
    """A role in a team.

    An LLM agent has a model (default: the team's); a function agent names a
    Python callable (`function: package.module:callable`) instead.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")
    role: str = ""
    goal: str = ""
    instructions: str = ""
    constraints: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)
    """Names of the tools this role may call; any other call is refused."""
    output_schema: dict[str, Any] | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    function: str | None = None
    """`package.module:callable` for a function agent."""
    max_tool_calls: int = 5

    # A schema goes into every prompt and validator: bound it like a file.
    _bounded_schema = field_validator("output_schema")(check_schema_size)


def render_system_prompt(
    spec: AgentSpec,
    *,
    team: str = "",
    teammates: list[str] | None = None,
    tool_names: list[str] | None = None,
    stop_phrase: str | None = None,
) -> str:
    """The system prompt that makes a model play `spec`'s role."""
    who = f"You are {spec.name}"
    if spec.role:
        who += f", the {spec.role}"
    if team:
        who += f" in the team '{team}'"
    lines = [who + "."]
    if teammates:
        lines.append(f"Your teammates: {', '.join(teammates)}.")
    if spec.goal:
        lines.append(f"Your goal: {spec.goal}")
    if spec.instructions:
        lines.append(spec.instructions.strip())
    if spec.constraints:
        lines.append("You must not:")
        lines.extend(f"- {c}" for c in spec.constraints)
    if tool_names:
        lines.append(f"Tools you may use: {', '.join(tool_names)}. Do not call any other tool.")
    if stop_phrase:
        lines.append(f"When the task is solved, write '{stop_phrase}' followed by the answer.")
    lines.append("Stay within your role; leave other roles' work to them.")
    return "\n".join(lines)
