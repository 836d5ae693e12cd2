"""The answer of an attribution method: who, when, why, and how it was checked.

Its own module so the methods (`_attribution`, `_reroll`) share it without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class AttributionResult:
    run_id: str
    method: str
    agent: str | None
    step: int | None
    reason: str = ""
    confidence: float | None = None
    intervention: str | None = None
    verified: bool | None = None
    replay_run_id: str | None = None
    replays: list[dict[str, Any]] = field(default_factory=list)
    with_ground_truth: bool = True
    model_calls: int = 0
    cost_usd: float | None = 0.0
    """What the model calls cost (None when a price was unknown), replays included."""
    notes: list[str] = field(default_factory=list)
    curve: list[dict[str, Any]] = field(default_factory=list)
    """reroll: S(k) at each probed step (successes, re-rolls, rate, 95% Wilson interval)."""
    point_of_no_return: int | None = None
    """reroll: the last step from which a re-roll still succeeded."""
    decided: bool | None = None
    """reroll: False when the measurements did not settle a step (nothing is blamed)."""
    replays_used: int = 0
