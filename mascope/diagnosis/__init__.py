"""Diagnosis: rule detectors, the LLM judge, attribution, batch jobs and metrics."""

from ._attribution import METHODS, aattribute, attribute
from ._blame import AttributionResult
from ._eval_repair import RepairEval, aevaluate_repair, evaluate_repair
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
    "METHODS",
    "PROMPT_VERSION",
    "RULE_PREFIX",
    "AttributionResult",
    "Finding",
    "JudgeConfig",
    "Judgement",
    "ModeResult",
    "RepairEval",
    "aattribute",
    "aevaluate_repair",
    "ajudge_run",
    "answer_schema",
    "apply_rules",
    "attribute",
    "detect",
    "evaluate_repair",
    "judge",
    "render_steps",
    "windows",
]
