"""Diagnosis: rule detectors, the LLM judge, attribution, batch jobs and metrics."""

from ._judge import (
    LLM_PREFIX,
    PROMPT_VERSION,
    JudgeConfig,
    Judgement,
    ModeResult,
    ajudge_run,
    answer_schema,
    judge,
    render_steps,
    windows,
)
from ._rules import DETECTORS, RULE_PREFIX, Finding, apply_rules, detect

__all__ = [
    "DETECTORS",
    "LLM_PREFIX",
    "PROMPT_VERSION",
    "RULE_PREFIX",
    "Finding",
    "JudgeConfig",
    "Judgement",
    "ModeResult",
    "ajudge_run",
    "answer_schema",
    "apply_rules",
    "detect",
    "judge",
    "render_steps",
    "windows",
]
