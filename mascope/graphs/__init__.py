"""Teams compiled to LangGraph: topologies, run, stream, resume and fork."""

from mascope.agents import AskHumanOnFail, HumanVerifier, ask_human

from ._calibrated import calibration_digest, without_calibration
from ._context import RunContext
from ._events import (
    RestartEvent,
    RunEventKind,
    StepCallback,
    StepEvent,
    TokenEvent,
    TokenEventCallback,
)
from ._resolved import ResolvedTeam
from ._result import ResultEvent, RunEvent, RunResult, answer_matches
from ._routing import Router, RouterError, RouteState
from ._schema_doc import team_json_schema, team_reference, team_schema_text
from ._spec import (
    END,
    EdgeSpec,
    GraphSpec,
    GroupChatSpec,
    NodeSpec,
    PipelineSpec,
    StageSpec,
    TeamSpec,
    TerminationSpec,
    VerifierSpec,
    load_team_file,
    parse_team,
)
from ._team import Team

__all__ = [
    "END",
    "AskHumanOnFail",
    "EdgeSpec",
    "GraphSpec",
    "GroupChatSpec",
    "HumanVerifier",
    "NodeSpec",
    "PipelineSpec",
    "ResolvedTeam",
    "RestartEvent",
    "ResultEvent",
    "RouteState",
    "Router",
    "RouterError",
    "RunContext",
    "RunEvent",
    "RunEventKind",
    "RunResult",
    "StageSpec",
    "StepCallback",
    "StepEvent",
    "Team",
    "TeamSpec",
    "TerminationSpec",
    "TokenEvent",
    "TokenEventCallback",
    "VerifierSpec",
    "answer_matches",
    "ask_human",
    "calibration_digest",
    "load_team_file",
    "parse_team",
    "team_json_schema",
    "team_reference",
    "team_schema_text",
    "without_calibration",
]
