"""The trace store: runs, steps, annotations and attributions in SQLite or PostgreSQL.

from mascope.traces import TraceStore

store = TraceStore("mascope.db")
run_id = store.start_run(team="demo", task="add 2 and 3")
store.append_step(run_id, agent="solver", content="5")
store.finish_run(run_id, status="succeeded", final_answer="5")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mascope._lazy import lazy_exports

if TYPE_CHECKING:
    from ._constants import (
        EXPORT_FORMATS,
        HOW_TO_MAKE_ONE,
        HUMAN_INPUT_EVENT,
        IMPORT_FORMATS,
        PAUSE_EVENT,
        RUN_SORTS,
        RUN_STATUSES,
        pause_question,
    )
    from ._export import bundle, export_runs, write_export, write_jsonl
    from ._formats import BUNDLE_FORMAT, RunBundle
    from ._glance import RunGlance, RunRow, RunsGlance, StepRow, StoreGlance
    from ._ids import file_safe, is_valid_id, new_id
    from ._import import ImportReport, import_paths, parse_jsonl, parse_mad, parse_whowhen
    from ._inputs import InputMessage
    from ._queries import RunPage, RunSort
    from ._redact import MASK, Redactor
    from ._schema import (
        SCHEMA_VERSION,
        Annotation,
        AnnotationBase,
        Attribution,
        AttributionBase,
        Job,
        JobItem,
        Run,
        RunBase,
        RunStatus,
        Step,
        StepBase,
        StepKind,
    )
    from ._store import TraceStore

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "IMPORT_FORMATS": "._constants",
        "HOW_TO_MAKE_ONE": "._constants",
        "EXPORT_FORMATS": "._constants",
        "HUMAN_INPUT_EVENT": "._constants",
        "PAUSE_EVENT": "._constants",
        "pause_question": "._constants",
        "bundle": "._export",
        "export_runs": "._export",
        "write_export": "._export",
        "write_jsonl": "._export",
        "BUNDLE_FORMAT": "._formats",
        "RunBundle": "._formats",
        "new_id": "._ids",
        "file_safe": "._ids",
        "is_valid_id": "._ids",
        "ImportReport": "._import",
        "InputMessage": "._inputs",
        "import_paths": "._import",
        "parse_jsonl": "._import",
        "parse_mad": "._import",
        "parse_whowhen": "._import",
        "MASK": "._redact",
        "Redactor": "._redact",
        "RUN_STATUSES": "._constants",
        "RUN_SORTS": "._constants",
        "RunGlance": "._glance",
        "RunRow": "._glance",
        "StepRow": "._glance",
        "RunsGlance": "._glance",
        "StoreGlance": "._glance",
        "SCHEMA_VERSION": "._schema",
        "Annotation": "._schema",
        "AnnotationBase": "._schema",
        "Attribution": "._schema",
        "AttributionBase": "._schema",
        "Job": "._schema",
        "JobItem": "._schema",
        "Run": "._schema",
        "RunBase": "._schema",
        "RunStatus": "._schema",
        "Step": "._schema",
        "StepBase": "._schema",
        "StepKind": "._schema",
        "RunPage": "._queries",
        "RunSort": "._constants",
        "TraceStore": "._store",
    },
)


__all__ = [
    "BUNDLE_FORMAT",
    "EXPORT_FORMATS",
    "HOW_TO_MAKE_ONE",
    "HUMAN_INPUT_EVENT",
    "IMPORT_FORMATS",
    "MASK",
    "PAUSE_EVENT",
    "RUN_SORTS",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "Annotation",
    "AnnotationBase",
    "Attribution",
    "AttributionBase",
    "ImportReport",
    "InputMessage",
    "Job",
    "JobItem",
    "Redactor",
    "Run",
    "RunBase",
    "RunBundle",
    "RunGlance",
    "RunPage",
    "RunRow",
    "RunSort",
    "RunStatus",
    "RunsGlance",
    "Step",
    "StepBase",
    "StepKind",
    "StepRow",
    "StoreGlance",
    "TraceStore",
    "bundle",
    "export_runs",
    "file_safe",
    "import_paths",
    "is_valid_id",
    "new_id",
    "parse_jsonl",
    "parse_mad",
    "parse_whowhen",
    "pause_question",
    "write_export",
    "write_jsonl",
]
