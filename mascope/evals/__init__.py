"""Evaluations as a library: benchmarks of diagnosis, and a team over a dataset.

    from mascope.evals import aevaluate_planted, aevaluate_whowhen, aeval_run

- A team over a dataset of tasks (`mascope eval run`): `aeval_run`,
  `load_tasks`; task sets `humaneval_tasks` (scored by `humaneval_passes`
  against the official hidden tests) and `word_problems`. Verifier and
  deferral calibration: `acalibrate`, `calibrate_tau`.
- Planted faults (`mascope eval planted`): `aevaluate_planted` plants a fault
  in a working team and scores attribution methods and labellers against it;
  `build_embedded_team` builds one of its embedded-model teams.
- Who&When (`mascope eval whowhen`): `aevaluate_whowhen`, beside
  `WHOWHEN_PUBLISHED`.
- MAST agreement (`mascope eval mast`): `aevaluate_mast`, the judge against
  human labels, beside `MAST_PUBLISHED`.
- Repair rate (`mascope eval repair`): `aevaluate_repair` / `evaluate_repair`.

Methods in `NEEDS_MODEL` need an LLM (`model=`); the others run without one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mascope._lazy import lazy_exports

if TYPE_CHECKING:
    from ._calibrate import (
        acalibrate,
        calibrate_runs,
        calibration_summary,
        calibration_tasks,
        check_calibratable,
        judged_candidates,
    )
    from ._deferral import MIN_RECORDS, TauCalibration, calibrate_tau
    from ._embedded import build_embedded_team
    from ._eval_mast import PUBLISHED as MAST_PUBLISHED
    from ._eval_mast import MastEval, aevaluate_mast
    from ._eval_mast import eval_dict as mast_eval_dict
    from ._eval_planted import CHOICES as PLANTED_METHODS
    from ._eval_planted import (
        EMBEDDED_FAULT_RATE,
        NEEDS_MODEL,
        AttributionScore,
        PlantedEval,
        aevaluate_planted,
    )
    from ._eval_planted import FAMILIES as PLANTED_FAMILIES
    from ._eval_planted import parse_methods as planted_methods
    from ._eval_repair import RepairEval, aevaluate_repair, evaluate_repair
    from ._eval_repair import check_arguments as check_repair_arguments
    from ._eval_repair import measured_runs as repair_measured_runs
    from ._eval_repair import parse_methods as repair_methods
    from ._eval_whowhen import PUBLISHED as WHOWHEN_PUBLISHED
    from ._eval_whowhen import WhoWhenEval, aevaluate_whowhen
    from ._repair_tasks import SHAPES as REPAIR_SHAPES
    from ._suites import humaneval_passes, humaneval_tasks, visible_examples, word_problems
    from ._tasks import (
        EvalReport,
        EvalTask,
        aeval_run,
        eval_job_id,
        eval_on_ray,
        eval_report,
        load_tasks,
        queue_eval,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "EvalReport": "._tasks",
        "MIN_RECORDS": "._deferral",
        "TauCalibration": "._deferral",
        "calibrate_tau": "._deferral",
        "acalibrate": "._calibrate",
        "calibrate_runs": "._calibrate",
        "calibration_summary": "._calibrate",
        "calibration_tasks": "._calibrate",
        "check_calibratable": "._calibrate",
        "judged_candidates": "._calibrate",
        "EvalTask": "._tasks",
        "aeval_run": "._tasks",
        "eval_job_id": "._tasks",
        "eval_report": "._tasks",
        "eval_on_ray": "._tasks",
        "queue_eval": "._tasks",
        "load_tasks": "._tasks",
        "humaneval_passes": "._suites",
        "humaneval_tasks": "._suites",
        "visible_examples": "._suites",
        "word_problems": "._suites",
        "build_embedded_team": "._embedded",
        "MAST_PUBLISHED": "._eval_mast:PUBLISHED",
        "MastEval": "._eval_mast",
        "aevaluate_mast": "._eval_mast",
        "mast_eval_dict": "._eval_mast:eval_dict",
        "PLANTED_METHODS": "._eval_planted:CHOICES",
        "PLANTED_FAMILIES": "._eval_planted:FAMILIES",
        "EMBEDDED_FAULT_RATE": "._eval_planted",
        "NEEDS_MODEL": "._eval_planted",
        "AttributionScore": "._eval_planted",
        "PlantedEval": "._eval_planted",
        "aevaluate_planted": "._eval_planted",
        "planted_methods": "._eval_planted:parse_methods",
        "RepairEval": "._eval_repair",
        "aevaluate_repair": "._eval_repair",
        "evaluate_repair": "._eval_repair",
        "check_repair_arguments": "._eval_repair:check_arguments",
        "repair_measured_runs": "._eval_repair:measured_runs",
        "repair_methods": "._eval_repair:parse_methods",
        "WHOWHEN_PUBLISHED": "._eval_whowhen:PUBLISHED",
        "WhoWhenEval": "._eval_whowhen",
        "aevaluate_whowhen": "._eval_whowhen",
        "REPAIR_SHAPES": "._repair_tasks:SHAPES",
    },
)

__all__ = [
    "EMBEDDED_FAULT_RATE",
    "MAST_PUBLISHED",
    "MIN_RECORDS",
    "NEEDS_MODEL",
    "PLANTED_FAMILIES",
    "PLANTED_METHODS",
    "REPAIR_SHAPES",
    "WHOWHEN_PUBLISHED",
    "AttributionScore",
    "EvalReport",
    "EvalTask",
    "MastEval",
    "PlantedEval",
    "RepairEval",
    "TauCalibration",
    "WhoWhenEval",
    "acalibrate",
    "aeval_run",
    "aevaluate_mast",
    "aevaluate_planted",
    "aevaluate_repair",
    "aevaluate_whowhen",
    "build_embedded_team",
    "calibrate_runs",
    "calibrate_tau",
    "calibration_summary",
    "calibration_tasks",
    "check_calibratable",
    "check_repair_arguments",
    "eval_job_id",
    "eval_on_ray",
    "eval_report",
    "evaluate_repair",
    "humaneval_passes",
    "humaneval_tasks",
    "judged_candidates",
    "load_tasks",
    "mast_eval_dict",
    "planted_methods",
    "queue_eval",
    "repair_measured_runs",
    "repair_methods",
    "visible_examples",
    "word_problems",
]
