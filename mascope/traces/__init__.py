"""The trace store: runs, steps, annotations and attributions in SQLite.

from mascope.traces import TraceStore

store = TraceStore("mascope.db")
run_id = store.start_run(team="demo", task="add 2 and 3")
store.append_step(run_id, agent="solver", content="5")
store.finish_run(run_id, status="succeeded", final_answer="5")
"""

from ._export import EXPORT_FORMATS, bundle, export_runs, otel_document, write_jsonl
from ._formats import BUNDLE_FORMAT, RunBundle
from ._ids import new_id
from ._import import FORMATS as IMPORT_FORMATS
from ._import import ImportReport, import_paths, parse_jsonl, parse_mad, parse_whowhen
from ._redact import MASK, Redactor
from ._schema import (
    RUN_STATUSES,
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

__all__ = [
    "BUNDLE_FORMAT",
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "MASK",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "Annotation",
    "AnnotationBase",
    "Attribution",
    "AttributionBase",
    "ImportReport",
    "Job",
    "JobItem",
    "Redactor",
    "Run",
    "RunBase",
    "RunBundle",
    "RunStatus",
    "Step",
    "StepBase",
    "StepKind",
    "TraceStore",
    "bundle",
    "export_runs",
    "import_paths",
    "new_id",
    "otel_document",
    "parse_jsonl",
    "parse_mad",
    "parse_whowhen",
    "write_jsonl",
]
