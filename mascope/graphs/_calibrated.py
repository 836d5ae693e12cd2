"""A team's calibration key, and the calibration files its stages name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mascope.agents import VerifierRates, read_calibration, usable_rates
from mascope.errors import ConfigError

from ._spec import PipelineSpec, TeamSpec, parse_team

_CALIBRATION_FIELDS = ("penalty", "calibration", "sample_cost")


def calibration_digest(spec: TeamSpec) -> str:
    """The team a calibration belongs to: its spec without the stages' strategies.

    Strategies are left out because they do not change what a verifier says
    about a candidate, and because pointing a strategy at the calibration file
    must not invalidate that file.
    """
    data = spec.dump()
    top = data.get("topology") or {}
    if top.get("kind") == "pipeline":
        top["stages"] = [
            {k: v for k, v in s.items() if k != "strategy"} if isinstance(s, dict) else {"agent": s}
            for s in top.get("stages", [])
        ]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def without_calibration(spec: TeamSpec) -> TeamSpec:
    """The same team with its strategies' penalty and calibration removed (how it is calibrated)."""
    data: dict[str, Any] = spec.dump()
    for stage in (data.get("topology") or {}).get("stages", []) or []:
        if isinstance(stage, dict) and isinstance(stage.get("strategy"), dict):
            for key in _CALIBRATION_FIELDS:
                stage["strategy"].pop(key, None)
    plain = parse_team(data, source=spec.name)
    plain._source_dir = spec.source_dir
    return plain


def stage_calibrations(
    spec: TeamSpec, base_dir: Path | None, model: str | None = None
) -> dict[int, VerifierRates]:
    """Each calibrated pipeline stage's verifier rates, by stage index (`model`: the
    model that replaces the team's own, as in the calibration runs).

    A file made for another team, or with too few labelled candidates to
    drive a stopping rule, is a one-line `ConfigError`.
    """
    top = spec.topology
    if not isinstance(top, PipelineSpec):
        return {}
    digest = calibration_digest(spec)
    found: dict[int, VerifierRates] = {}
    for i, stage in enumerate(top.stage_list()):
        path = stage.strategy.calibration
        if path is None or stage.verifier is None:
            continue
        where = Path(path).expanduser()
        if not where.is_absolute() and base_dir is not None:
            where = base_dir / where
        try:
            cal = read_calibration(where, team=spec.name, digest=digest, model=model)
            found[i] = usable_rates(cal, stage.verifier, where)
        except ConfigError as exc:
            raise ConfigError(f"topology.stages[{i}].strategy.calibration: {exc}") from None
    return found
