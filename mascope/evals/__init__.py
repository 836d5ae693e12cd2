"""Evaluations as a library: a team over a dataset of tasks (`mascope eval run`).

from mascope.evals import aeval_run, load_tasks

Task sets to run: `humaneval_tasks` (scored by `humaneval_passes` against the
official hidden tests) and `word_problems`.
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
    },
)

__all__ = [
    "MIN_RECORDS",
    "EvalReport",
    "EvalTask",
    "TauCalibration",
    "acalibrate",
    "aeval_run",
    "calibrate_runs",
    "calibrate_tau",
    "calibration_summary",
    "calibration_tasks",
    "check_calibratable",
    "eval_job_id",
    "eval_on_ray",
    "eval_report",
    "humaneval_passes",
    "humaneval_tasks",
    "judged_candidates",
    "load_tasks",
    "queue_eval",
    "visible_examples",
    "word_problems",
]
