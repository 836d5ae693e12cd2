"""Diagnosis: rule detectors, the LLM judge, attribution, batch jobs and metrics.

    from mascope.diagnosis import judge, attribute, judge_many
    judgement = judge(store, run_id, model="openai:gpt-4o-mini")
    blame = attribute(store, run_id, method="reroll")
    report = judge_many(store, store.all_run_ids(status="failed"), model="openai:gpt-4o-mini")

Every function has an async twin of the same signature (`ajudge`,
`aattribute`, `ajudge_many`, `aattribute_many`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mascope._lazy import lazy_exports

if TYPE_CHECKING:
    from ._attribution import METHODS, Corrections, aattribute, attribute, verdict_correction
    from ._batch import (
        aattribute_many,
        ajudge_many,
        attribute_many,
        attribute_on_ray,
        judge_many,
        judge_on_ray,
    )
    from ._blame import AttributionResult
    from ._judge import (
        LLM_PREFIX,
        MIN_AGREEMENT,
        PROMPT_VERSION,
        JudgeConfig,
        JudgeFn,
        Judgement,
        ModeResult,
        ajudge,
        answer_schema,
        judge,
        render_steps,
        windows,
    )
    from ._metrics import Agreement, agreement, cohen_kappa, wilson
    from ._reroll import Position, reroll_positions
    from ._rules import DETECTORS, RULE_PREFIX, Finding, apply_rules, detect

_EXPORTS = {
    "METHODS": "._attribution",
    "Corrections": "._attribution",
    "aattribute": "._attribution",
    "attribute": "._attribution",
    "verdict_correction": "._attribution",
    "aattribute_many": "._batch",
    "ajudge_many": "._batch",
    "attribute_many": "._batch",
    "attribute_on_ray": "._batch",
    "judge_many": "._batch",
    "judge_on_ray": "._batch",
    "AttributionResult": "._blame",
    "LLM_PREFIX": "._judge",
    "MIN_AGREEMENT": "._judge",
    "PROMPT_VERSION": "._judge",
    "JudgeConfig": "._judge",
    "JudgeFn": "._judge",
    "Judgement": "._judge",
    "ModeResult": "._judge",
    "ajudge": "._judge",
    "answer_schema": "._judge",
    "judge": "._judge",
    "render_steps": "._judge",
    "windows": "._judge",
    "Agreement": "._metrics",
    "agreement": "._metrics",
    "cohen_kappa": "._metrics",
    "wilson": "._metrics",
    "Position": "._reroll",
    "reroll_positions": "._reroll",
    "DETECTORS": "._rules",
    "RULE_PREFIX": "._rules",
    "Finding": "._rules",
    "apply_rules": "._rules",
    "detect": "._rules",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "DETECTORS",
    "LLM_PREFIX",
    "METHODS",
    "MIN_AGREEMENT",
    "PROMPT_VERSION",
    "RULE_PREFIX",
    "Agreement",
    "AttributionResult",
    "Corrections",
    "Finding",
    "JudgeConfig",
    "JudgeFn",
    "Judgement",
    "ModeResult",
    "Position",
    "aattribute",
    "aattribute_many",
    "agreement",
    "ajudge",
    "ajudge_many",
    "answer_schema",
    "apply_rules",
    "attribute",
    "attribute_many",
    "attribute_on_ray",
    "cohen_kappa",
    "detect",
    "judge",
    "judge_many",
    "judge_on_ray",
    "render_steps",
    "reroll_positions",
    "verdict_correction",
    "wilson",
    "windows",
]
