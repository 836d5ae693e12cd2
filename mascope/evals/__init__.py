"""Evaluations as a library: a team over a dataset of tasks (`mascope eval run`).

from mascope.evals import aeval_run, load_tasks
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
    },
)

__all__ = [
    "EvalReport",
    "EvalTask",
    "acalibrate",
    "aeval_run",
    "calibrate_runs",
    "calibration_summary",
    "calibration_tasks",
    "check_calibratable",
    "eval_job_id",
    "eval_on_ray",
    "eval_report",
    "judged_candidates",
    "load_tasks",
    "queue_eval",
]
