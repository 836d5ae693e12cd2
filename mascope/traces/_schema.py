"""The trace store's tables (SQLModel).

Each table has a non-table base class with the user-visible fields; the base
doubles as the validated record type of mascope's JSONL format.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from mascope._vocabulary import RUN_STATUSES as RUN_STATUSES
from mascope._vocabulary import RunStatus as RunStatus
from mascope._vocabulary import StepKind as StepKind

from ._constants import SCHEMA_VERSION as SCHEMA_VERSION


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunBase(SQLModel):
    id: str
    parent_run_id: str | None = None
    fork_step: int | None = None
    intervention: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    team: str = ""
    spec: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    spec_hash: str | None = None
    task: str = Field(default="", sa_type=Text)
    ground_truth: str | None = Field(default=None, sa_type=Text)
    status: str = "running"
    final_answer: str | None = Field(default=None, sa_type=Text)
    termination_reason: str | None = None
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    step_count: int = 0
    source: str = "native"
    """Where the run came from: `native` (run by mascope), `whowhen`, `mad`, `jsonl`."""
    source_key: str | None = None
    """What identifies an imported run's origin; importing it again is a no-op."""
    metadata_: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON))


class Run(RunBase, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_status_id", "status", "id"),
        Index("ix_runs_team_id", "team", "id"),
        Index("ix_runs_parent", "parent_run_id"),
        Index("ix_runs_source_key", "source_key", unique=True),
    )
    id: str = Field(primary_key=True)
    owner: str | None = None
    """`host:pid:start` of the process recording a running run."""
    heartbeat_at: datetime | None = None
    """When the owner last said it is still recording (a running run's lease, checked across hosts)."""


class StepBase(SQLModel):
    index: int = Field(sa_column_kwargs={"name": "idx"})
    agent: str = ""
    kind: str = "message"
    content: str = Field(default="", sa_type=Text)
    data: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float | None = None
    cost_usd: float | None = None
    checkpoint_id: str | None = None
    """LangGraph checkpoint from just before this step (the fork point)."""
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    inputs: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    """The messages a model was sent for this step, as references to `blobs`
    (`TraceStore.step_inputs` gives them back as text); None when no model was called."""


class Step(StepBase, table=True):
    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("run_id", "idx", name="uq_steps_run_idx"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str


class Blob(SQLModel, table=True):
    """A part of a step's input text, stored once under a hash of it (see `_inputs.py`)."""

    __tablename__ = "blobs"
    hash: str = Field(primary_key=True)
    text: str = Field(sa_type=Text)


class AnnotationBase(SQLModel):
    id: str
    step_index: int | None = None
    taxonomy: str = "mast"
    mode: str
    present: bool
    confidence: float | None = None
    evidence_steps: list[int] = Field(default_factory=list, sa_type=JSON)
    rationale: str = Field(default="", sa_type=Text)
    annotator: str
    """`rule:NAME`, `llm:MODEL` or `human:NAME`."""
    prompt_version: str | None = None
    job_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    status: str | None = None
    """`present`, `absent` or `uncertain` (then `present` is false: the judge said present but
    its evidence did not check out or its samples disagreed); None on labels from before v4
    and from annotators that are never uncertain, whose `present` says it all."""
    status_reason: str | None = Field(default=None, sa_type=Text)
    """Why a label is uncertain, e.g. "quote '...' is not in step 3"."""

    @property
    def label_status(self) -> str:
        """`present`, `absent` or `uncertain`, for labels with or without a stored status."""
        return self.status or ("present" if self.present else "absent")


class Annotation(AnnotationBase, table=True):
    __tablename__ = "annotations"
    __table_args__ = (
        Index("ix_annotations_run", "run_id"),
        Index("ix_annotations_mode", "mode", "present", "run_id"),
    )
    id: str = Field(primary_key=True)
    run_id: str


class AttributionBase(SQLModel):
    id: str
    method: str
    """`human`, `all-at-once`, `step-by-step`, `binary-search`, `a2p`, `counterfactual`."""
    agent: str | None = None
    step_index: int | None = None
    confidence: float | None = None
    reason: str = Field(default="", sa_type=Text)
    intervention: str | None = Field(default=None, sa_type=Text)
    verified: bool | None = None
    replay_run_id: str | None = None
    with_ground_truth: bool | None = None
    annotator: str = ""
    job_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Attribution(AttributionBase, table=True):
    __tablename__ = "attributions"
    __table_args__ = (Index("ix_attributions_run", "run_id"),)
    id: str = Field(primary_key=True)
    run_id: str


class Job(SQLModel, table=True):
    """A batch job (judge, attribute): its configuration and progress."""

    __tablename__ = "jobs"
    id: str = Field(primary_key=True)
    kind: str
    config: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    config_hash: str = ""
    status: str = "running"
    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    cost_usd: float = 0.0
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class JobItem(SQLModel, table=True):
    """One run's state within a job, so a killed job resumes where it stopped."""

    __tablename__ = "job_items"
    __table_args__ = (Index("ix_job_items_status", "job_id", "status"),)
    job_id: str = Field(primary_key=True)
    run_id: str = Field(primary_key=True)
    status: str = "pending"
    attempts: int = 0
    error: str | None = None
    cost_usd: float = 0.0
    updated_at: datetime = Field(default_factory=utcnow)
    claimed_by: str | None = None
    """`host:pid:start` of the worker doing this item now (None: nobody)."""
    claimed_at: datetime | None = None
    """When the claim was taken or last renewed; an older claim than the lease can be taken over."""
    run_steps: int | None = None
    """The run's step count when this item's result was recorded: a run that grew since is redone."""
    lease_until: datetime | None = None
    """When the claim lapses unless its worker heartbeats; then another worker may take the item."""
    payload: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    """What the work needs besides the item's key (an eval item's task and ground truth)."""
    result: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    """What the work produced, committed with the item's completion (an eval item's run and score)."""


class Meta(SQLModel, table=True):
    """Store-level facts, such as the schema version."""

    __tablename__ = "mascope_meta"
    key: str = Field(primary_key=True)
    value: str
