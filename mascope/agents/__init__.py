"""Agents: roles, typed tools, verifiers and test-time strategies."""

from ._agent import Agent, AgentFn, Recorder, TranscriptEntry, TurnContext, TurnResult
from ._codeexec import TestRun, extract_code, run_tests
from ._matching import (
    MATCH_MODES,
    Extract,
    MatchMode,
    MatchResult,
    extract_answer,
    match_answer,
    normalise,
)
from ._sampling import samples, sampling
from ._spec import AgentSpec, render_system_prompt
from ._strategies import Budget, Selection, StrategyKind, StrategySpec, run_strategy
from ._tools import FINAL_ANSWER, Tool, final_answer_tool, import_object, tool
from ._verifiers import (
    AnswerMatch,
    CallableVerifier,
    CodeTests,
    Ensemble,
    JsonSchemaCheck,
    Rubric,
    Verdict,
    Verifier,
    VerifyContext,
    as_verifier,
    parse_verdict_text,
    verdict_text,
)

__all__ = [
    "FINAL_ANSWER",
    "MATCH_MODES",
    "Agent",
    "AgentFn",
    "AgentSpec",
    "AnswerMatch",
    "Budget",
    "CallableVerifier",
    "CodeTests",
    "Ensemble",
    "Extract",
    "JsonSchemaCheck",
    "MatchMode",
    "MatchResult",
    "Recorder",
    "Rubric",
    "Selection",
    "StrategyKind",
    "StrategySpec",
    "TestRun",
    "Tool",
    "TranscriptEntry",
    "TurnContext",
    "TurnResult",
    "Verdict",
    "Verifier",
    "VerifyContext",
    "as_verifier",
    "extract_answer",
    "extract_code",
    "final_answer_tool",
    "import_object",
    "match_answer",
    "normalise",
    "parse_verdict_text",
    "render_system_prompt",
    "run_strategy",
    "run_tests",
    "samples",
    "sampling",
    "tool",
    "verdict_text",
]
