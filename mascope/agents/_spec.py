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

    # Attribute docstrings become field descriptions (docs/teams.md, the JSON Schema).
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [{"name": "researcher", "role": "researcher", "goal": "Find the facts"}]
        },
    )

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")
    """A unique name of letters, digits, `_` and `-`, starting with a letter or `_`."""
    role: str = ""
    """What the agent is, in a few words (`Python programmer`); goes into its system prompt."""
    goal: str = ""
    """What the agent is trying to achieve."""
    instructions: str = ""
    """How to do it: format of the answer, steps to follow."""
    constraints: list[str] = Field(default_factory=list, examples=[["write code"]])
    """What the agent must not do; each is rendered as `You must not: ...`."""
    tools: list[str] = Field(default_factory=list, examples=[["search"]])
    """Names of the tools this role may call; any other call is refused."""
    output_schema: dict[str, Any] | None = None
    """JSON Schema the agent's answer must match (asked of the model and validated)."""
    model: str | None = None
    """Model string for this agent (default: the team's `model`)."""
    temperature: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    """Sampling temperature (default: the backend's)."""
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    """Most tokens the model may write per turn."""
    function: str | None = None
    """`package.module:callable` for a function agent; modules next to the team file are found."""
    max_tool_calls: int = Field(default=5, ge=0, le=1000)
    """Most tool calls in one turn before the agent must answer."""

    # A schema goes into every prompt and validator: bound it like a file.
    _bounded_schema = field_validator("output_schema")(check_schema_size)

    @field_validator("output_schema")
    @classmethod
    def _usable_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        # Checked when the file loads, not at the agent's first turn mid-run.
        if schema is not None:
            from mascope.errors import ConfigError
            from mascope.models import output_spec

            try:
                output_spec(schema)
            except ConfigError as exc:
                raise ValueError(str(exc).removeprefix("the output schema ")) from None
        return schema


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
