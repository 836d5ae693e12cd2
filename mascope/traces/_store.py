"""TraceStore: runs, steps, annotations and attributions in one database.

A facade over modules with one job each: `_engine` (open, check, tune and
migrate the database; everything that differs between SQLite and PostgreSQL),
`_recorder` (the hot path), `_queries` (reading, paging with an opaque
cursor), `_labels` (annotations, attributions), `_jobs` (job rows) and
`_bulk` (imports). SQLite by default; any SQLAlchemy URL otherwise, with
PostgreSQL tested. Every write is redacted first and committed at once, so a
process killed mid-run loses nothing it had recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mascope.settings import Settings

from ._bulk import write_bundles
from ._engine import SqliteBackend, open_backend
from ._inputs import InputMessage
from ._jobs import JobItemView, Jobs
from ._labels import Labels
from ._queries import Queries, RunPage, RunSort
from ._recorder import Recorder
from ._redact import Redactor
from ._schema import Annotation, AnnotationBase, Attribution, AttributionBase, Job, Run, Step


class TraceStore:
    """The trace store.

    Args:
        target: a file path or SQLAlchemy URL (`postgresql://user@host/db`);
            default `MASCOPE_DB` or `./mascope.db`.
        create: make a new store if there is none (else raise, changing nothing:
            a missing file, a foreign file or a database without a store each
            give a one-line `StoreError`).
        redactor: what masks secrets; default one built from the environment.
        read_only: open a store without ever writing to it (any write raises a
            one-line `StoreError`); `False` refuses a SQLite store this user
            cannot write at once; `None` (the default) reads a store it cannot
            write and writes one it can.
    """

    def __init__(
        self,
        target: str | Path | None = None,
        *,
        create: bool = True,
        settings: Settings | None = None,
        redactor: Redactor | None = None,
        read_only: bool | None = None,
    ):
        self.create = create
        self.redact = redactor or Redactor()
        self.engine = open_backend(target, settings, create=create, read_only=read_only)
        """The database and what differs between backends (see `_engine.py`)."""
        self.url = self.engine.url
        self.path = self.engine.path
        self.read_only = self.engine.read_only
        """True when this store was opened without write access."""
        self.is_sqlite = isinstance(self.engine, SqliteBackend)
        self.queries = Queries(self.engine, self.redact)
        self.recorder = Recorder(self.engine, self.redact)
        self.labels = Labels(self.engine, self.redact, self.queries.require_run)
        # A batch worker: the process plus this store object, so two workers in
        # one process (threads, tests) still claim items apart.
        self.jobs = Jobs(self.engine)

    # -- opening -----------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return self.queries.schema_version

    @property
    def where(self) -> str:
        """The store as messages name it: its file, or its URL without a password."""
        return self.engine.where

    def checkpoint_location(self) -> Path | str:
        """Where LangGraph checkpoints of this store's runs live: a SQLite file
        beside the store, or the PostgreSQL database itself (a URL)."""
        return self.engine.checkpoint_location()

    def close(self) -> None:
        self.recorder.close()
        self.engine.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TraceStore({self.where!r})"

    # -- recording ---------------------------------------------------------

    def start_run(
        self,
        *,
        team: str = "",
        task: str = "",
        spec: dict[str, Any] | None = None,
        spec_hash: str | None = None,
        ground_truth: str | None = None,
        metadata: dict[str, Any] | None = None,
        parent_run_id: str | None = None,
        fork_step: int | None = None,
        intervention: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record that a run began; returns its id."""
        return self.recorder.start_run(
            team=team, task=task, spec=spec, spec_hash=spec_hash, ground_truth=ground_truth,
            metadata=metadata, parent_run_id=parent_run_id, fork_step=fork_step,
            intervention=intervention, run_id=run_id,
        )  # fmt: skip

    def append_step(
        self,
        run_id: str,
        *,
        agent: str,
        kind: str = "message",
        content: str = "",
        data: dict[str, Any] | None = None,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        latency_s: float | None = None,
        cost_usd: float | None = None,
        checkpoint_id: str | None = None,
        error: str | None = None,
        inputs: Sequence[Any] | None = None,
    ) -> int:
        """Append one step to a run and commit it; returns its 0-based index.

        `inputs` are the messages a model was sent for this step (mappings or
        objects with `role`, `content` and optionally `name`, `tool_calls`,
        `tool_call_id`); each distinct text is stored once (`step_inputs` reads them).
        """
        return self.recorder.append_step(
            run_id, agent=agent, kind=kind, content=content, data=data, model=model,
            input_tokens=input_tokens, output_tokens=output_tokens, latency_s=latency_s,
            cost_usd=cost_usd, checkpoint_id=checkpoint_id, error=error, inputs=inputs,
        )  # fmt: skip

    def truncate_steps(self, run_id: str, from_index: int) -> int:
        """Delete a run's steps from `from_index` on (a resumed run redoes the
        unfinished node that wrote them); returns how many were deleted."""
        return self.recorder.truncate_steps(run_id, from_index)

    def copy_steps(self, source_run: str, target_run: str, before_index: int) -> int:
        """Copy a run's steps `0 .. before_index-1` into another run (a fork's shared past)."""
        return self.recorder.copy_steps(source_run, target_run, before_index)

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        final_answer: str | None = None,
        termination_reason: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Run:
        """Close a run: status, answer and why it ended; tokens, cost and step
        count are summed from its steps."""
        return self.recorder.finish_run(
            run_id,
            status=status,
            final_answer=final_answer,
            termination_reason=termination_reason,
            metadata=metadata,
        )

    def reopen_run(self, run_id: str) -> Run:
        """Mark an interrupted run as running again in this process (to resume it)."""
        self.recorder.reopen_run(run_id)
        return self.get_run(run_id)

    def recover_interrupted(self) -> list[str]:
        """Mark as `interrupted` the running runs whose recording process is gone.

        Gone: a process of this host that has exited, or (on any host) a
        heartbeat older than the lease (`recorder.lease_s`). Returns their ids.
        """
        return self.recorder.recover_interrupted()

    def describe_run(self, run_id: str, *, team: str, task: str) -> None:
        """Set a run's team and task after it began (a receiver learns them late)."""
        self.recorder.describe_run(run_id, team=team, task=task)

    def update_run_metadata(self, run_id: str, values: dict[str, Any]) -> None:
        """Merge `values` into a run's metadata."""
        self.recorder.update_run_metadata(run_id, values)

    # -- labels --------------------------------------------------------------

    def add_annotations(
        self, run_id: str, annotations: Iterable[AnnotationBase | dict[str, Any]]
    ) -> list[str]:
        """Store failure-mode labels for a run; returns their ids."""
        return self.labels.add_annotations(run_id, annotations)

    def replace_annotations(
        self,
        run_id: str,
        *,
        annotator_prefix: str,
        annotations: Iterable[AnnotationBase | dict[str, Any]],
        job_id: str | None = None,
    ) -> list[str]:
        """Swap a run's annotations from annotators starting with `annotator_prefix`
        for new ones, in one transaction (re-running a detector or judge)."""
        return self.labels.replace_annotations(
            run_id, annotator_prefix=annotator_prefix, annotations=annotations, job_id=job_id
        )

    def add_attribution(self, run_id: str, attribution: AttributionBase | dict[str, Any]) -> str:
        """Store who-and-when for a run; returns the attribution's id."""
        return self.labels.add_attribution(run_id, attribution)

    def annotations(self, run_id: str) -> list[Annotation]:
        """A run's failure-mode labels, oldest first."""
        return self.labels.annotations(run_id)

    def attributions(self, run_id: str) -> list[Attribution]:
        """A run's who-and-when answers, oldest first."""
        return self.labels.attributions(run_id)

    def modes_by_run(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        """The failure modes labelled present on each of these runs, by any annotator."""
        return self.labels.modes_by_run(run_ids)

    def labels_mark(self) -> str | None:
        """A value that changes whenever a failure-mode label is added: cheap enough to poll."""
        return self.labels.labels_mark()

    # -- batch jobs -------------------------------------------------------------

    def job_item_view(self, job_id: str, run_ids: Sequence[str]) -> dict[str, JobItemView]:
        """Each run's item state beside the run's own status and step count."""
        return self.jobs.job_item_view(job_id, run_ids)

    def get_job(self, job_id: str) -> Job | None:
        """A job's row, or None."""
        return self.jobs.get_job(job_id)

    # -- reading -----------------------------------------------------------

    def resolve_run_id(self, text: str) -> str:
        """The full id of the run that `text` (an id or a unique prefix of one) names."""
        return self.queries.resolve_run_id(text)

    def get_run(self, run_id: str) -> Run:
        """A run's row (a `NotFoundError` naming the store if there is none)."""
        return self.queries.get_run(run_id)

    def get_runs(self, run_ids: Sequence[str]) -> dict[str, Run]:
        """The rows of those of `run_ids` that exist, by id, read in one query."""
        return self.queries.get_runs(run_ids)

    def steps_of(self, run_ids: Sequence[str]) -> dict[str, list[Step]]:
        """Every step of each of `run_ids`, in order, read in one query; for many
        short runs at once (`iter_steps` pages one long run)."""
        return self.queries.steps_of(run_ids)

    def runs_with_steps(
        self,
        run_ids: Sequence[str],
        *,
        keep: Callable[[Run], bool] | None = None,
        batch: int = 200,
    ) -> Iterator[tuple[Run, list[Step]]]:
        """Each of `run_ids` that exists (and that `keep` keeps) with its steps, in
        order, read `batch` runs at a time in two queries each."""
        for start in range(0, len(run_ids), batch):
            rows = self.get_runs(run_ids[start : start + batch])
            wanted = [r for r in rows.values() if keep is None or keep(r)]
            steps = self.steps_of([r.id for r in wanted])
            for run in wanted:
                yield run, steps.get(run.id, [])

    def page_runs(
        self,
        *,
        status: str | None = None,
        team: str | None = None,
        mode: str | None = None,
        source: str | None = None,
        search: str | None = None,
        sort: RunSort = "time",
        ascending: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """One page of runs in any order; pass the page's `next` as `cursor` for the one after.

        The cursor is opaque and remembers the order: every sort pages the
        same way, and runs added meanwhile never repeat or shift a page.
        """
        return self.queries.page_runs(
            status=status, team=team, mode=mode, source=source, search=search,
            sort=sort, ascending=ascending, limit=limit, cursor=cursor,
        )  # fmt: skip

    def list_runs(
        self,
        *,
        status: str | None = None,
        team: str | None = None,
        mode: str | None = None,
        source: str | None = None,
        search: str | None = None,
        before: str | None = None,
        limit: int = 50,
        sort: RunSort = "time",
        ascending: bool = False,
        offset: int = 0,
    ) -> list[Run]:
        """Runs, newest first, one page at a time: pass the last id seen as `before`.

        `sort` orders by another column (ties newest first); to page any order,
        prefer `page_runs` and its cursor.
        """
        return self.queries.list_runs(
            status=status, team=team, mode=mode, source=source, search=search, before=before,
            limit=limit, sort=sort, ascending=ascending, offset=offset,
        )  # fmt: skip

    def child_runs(self, run_id: str, *, limit: int = 500) -> list[Run]:
        """Runs forked from this one (forks and counterfactual replays), oldest first."""
        return self.queries.child_runs(run_id, limit=limit)

    def all_run_ids(self, *, status: str | None = None, team: str | None = None) -> list[str]:
        """Ids of every run matching the filters, oldest first, read a page at a time."""
        return self.queries.all_run_ids(status=status, team=team)

    def count_runs(
        self,
        *,
        status: str | None = None,
        team: str | None = None,
        mode: str | None = None,
        source: str | None = None,
        search: str | None = None,
    ) -> int:
        """How many runs match the filters."""
        return self.queries.count_runs(
            status=status, team=team, mode=mode, source=source, search=search
        )

    def steps(self, run_id: str, *, offset: int = 0, limit: int | None = None) -> list[Step]:
        """A run's steps in order, optionally one window of them."""
        return self.queries.steps(run_id, offset=offset, limit=limit)

    def iter_steps(self, run_id: str, *, batch: int = 2000) -> Iterator[Step]:
        """All of a run's steps, fetched a batch at a time."""
        return self.queries.iter_steps(run_id, batch=batch)

    def step_inputs(self, run_id: str, index: int) -> list[InputMessage]:
        """The messages a model was sent for step `index` of a run, system prompt
        first; empty when the step called no model (or was recorded without them)."""
        return self.queries.step_inputs(run_id, index)

    def blobs(self, keys: Sequence[str]) -> dict[str, str]:
        """Stored input texts by key (the references in `Step.inputs`); unknown keys are left out."""
        return self.queries.blobs(keys)

    def count_steps(self, run_id: str) -> int:
        """How many steps a run has recorded."""
        return self.queries.count_steps(run_id)

    def live_step_counts(self, run_ids: Sequence[str]) -> dict[str, int]:
        """Step counts of runs still being recorded (finished runs carry theirs)."""
        return self.queries.live_step_counts(run_ids)

    def teams(self) -> list[str]:
        """Every team name in the store, sorted."""
        return self.queries.teams()

    def has_source_key(self, key: str) -> bool:
        """Whether a run imported from this origin is already stored."""
        return self.queries.has_source_key(key)

    def has_run(self, run_id: str) -> bool:
        """Whether a run with this exact id is stored."""
        return self.queries.has_run(run_id)

    def checkpoint_wal(self) -> None:
        """Fold the WAL back into the main file (for measuring its size; SQLite only)."""
        self.engine.fold_wal()

    # -- bulk writes (import) ---------------------------------------------------

    def write_bundles(self, bundles: Sequence[Any]) -> tuple[int, int]:
        """Write already-validated run bundles in one transaction.

        Runs whose id or source key is already in the store are skipped.
        Returns (written, skipped).
        """
        return write_bundles(self.engine, self.redact, self.labels, bundles)


__all__ = ["JobItemView", "RunPage", "RunSort", "TraceStore"]
