"""mascope's own interchange format: one run per JSON line, with everything in it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ._schema import AnnotationBase, AttributionBase, RunBase, StepBase

BUNDLE_FORMAT: Literal["mascope.run/1"] = "mascope.run/1"


class RunBundle(BaseModel):
    """A run with its steps, annotations and attributions: one line of mascope JSONL."""

    format: Literal["mascope.run/1"] = BUNDLE_FORMAT
    run: RunBase
    steps: list[StepBase] = Field(default_factory=list)
    annotations: list[AnnotationBase] = Field(default_factory=list)
    attributions: list[AttributionBase] = Field(default_factory=list)
    blobs: dict[str, str] = Field(default_factory=dict)
    """The input texts the steps' `inputs` refer to, by key (each once per run)."""

    def to_json_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["run"]["metadata"] = data["run"].pop("metadata_")
        return data

    @classmethod
    def from_json_dict(cls, data: Any) -> RunBundle:
        if (
            isinstance(data, dict)
            and isinstance(data.get("run"), dict)
            and "metadata" in data["run"]
        ):
            data = {**data, "run": {**data["run"]}}
            data["run"]["metadata_"] = data["run"].pop("metadata")
        return cls.model_validate(data)
