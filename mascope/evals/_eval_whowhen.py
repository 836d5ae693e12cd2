"""`mascope eval whowhen`: attribution accuracy on the Who&When benchmark.

Steps are scored by exact index. The original evaluation script's substring
score (gold "1" matches a predicted "12") is reported beside it only for
comparison with published tables, with a +-k tolerance for context.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mascope.diagnosis import aattribute, wilson
from mascope.errors import ConfigError, MascopeError
from mascope.models import ChatModel
from mascope.traces import TraceStore, import_paths

SUBSETS = {"algorithm-generated": "Algorithm-Generated", "hand-crafted": "Hand-Crafted"}
# Step / agent accuracy (%) with the ground truth given, as published (see ../shared/datasets/README.md).
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "random (recomputed)": {"algorithm-generated": (12.0, 29.1), "hand-crafted": (4.2, 19.1)},
    "all-at-once, GPT-4o": {"algorithm-generated": (12.5, 54.3), "hand-crafted": (5.3, 55.2)},
    "step-by-step, GPT-4o": {"algorithm-generated": (25.5, 35.2), "hand-crafted": (7.0, 34.5)},
    "binary search, GPT-4o": {"algorithm-generated": (24.0, 44.1), "hand-crafted": (6.9, 51.7)},
    "A2P": {"algorithm-generated": (47.5, 65.4), "hand-crafted": (29.3, 58.6)},
    "CHIEF (best known, 2025)": {"algorithm-generated": (52.0, 76.8), "hand-crafted": (29.3, 77.6)},
}


def normalise_agent(name: str | None) -> str:
    """Agent names compared loosely: case, separators and a trailing `(thought)`-style tag."""
    if not name:
        return ""
    base = re.sub(r"\s*\([^)]*\)\s*$", "", name.strip())
    return re.sub(r"[\s_\-]+", "", base).lower()


def substring_hit(gold: int, predicted: int | None) -> bool:
    """The original script's step check: the gold index as a substring of the prediction."""
    return predicted is not None and str(gold) in str(predicted)


@dataclass
class Scores:
    n: int
    step_exact: int
    step_substring: int
    step_within_1: int
    step_within_3: int
    agent: int

    def rate(self, hits: int) -> float:
        return hits / self.n if self.n else float("nan")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n}
        for key in ("step_exact", "step_substring", "step_within_1", "step_within_3", "agent"):
            hits = getattr(self, key)
            out[key] = self.rate(hits)
            out[f"{key}_ci"] = list(wilson(hits, self.n))
        return out


def score(pairs: Sequence[tuple[tuple[str, int], tuple[str | None, int | None]]]) -> Scores:
    """Score (gold agent, gold step) against (predicted agent, predicted step) pairs."""
    s = Scores(len(pairs), 0, 0, 0, 0, 0)
    for (g_agent, g_step), (p_agent, p_step) in pairs:
        s.step_exact += p_step == g_step
        s.step_substring += substring_hit(g_step, p_step)
        s.step_within_1 += p_step is not None and abs(p_step - g_step) <= 1
        s.step_within_3 += p_step is not None and abs(p_step - g_step) <= 3
        s.agent += normalise_agent(p_agent) == normalise_agent(g_agent)
    return s


@dataclass
class WhoWhenEval:
    subset: str
    method: str
    model: str
    with_ground_truth: bool
    scores: Scores
    always_step_0: Scores
    most_frequent_agent: tuple[str, Scores]
    failures: dict[str, str] = field(default_factory=dict)
    done: int = 0
    """Runs attributed (all of `total` unless interrupted)."""
    total: int = 0
    interrupted: bool = False
    """Cancelled part way (Ctrl-C): the scores cover the `done` runs only."""


async def aevaluate_whowhen(
    folder: str | Path,
    *,
    subset: str,
    method: str,
    model: ChatModel,
    with_ground_truth: bool = True,
    limit: int | None = None,
    on_run: Callable[[int, int], None] | None = None,
) -> WhoWhenEval:
    """Attribute every Who&When run of `subset` and score against its gold labels.

    Cancelled part way, it returns the scores of the runs done, marked `interrupted`.
    """
    if subset not in SUBSETS:
        raise ConfigError(f"unknown subset {subset!r}; use algorithm-generated or hand-crafted")
    root = Path(folder)
    source = root / SUBSETS[subset] if (root / SUBSETS[subset]).is_dir() else root
    if not source.is_dir():
        raise ConfigError(
            f"{folder} is not a Who&When folder (expected {SUBSETS[subset]}/ inside it)"
        )
    with tempfile.TemporaryDirectory(prefix="mascope-whowhen-") as tmp:
        store = TraceStore(Path(tmp) / "ww.db")
        import_paths(store, "whowhen", [source])
        runs = sorted(
            store.list_runs(limit=10_000, team=f"who&when/{subset}"),
            key=lambda r: _file_order(r.metadata_.get("file", "")),
        )
        if limit is not None:
            runs = runs[:limit]
        golds: list[tuple[str, int]] = []
        pairs = []
        failures: dict[str, str] = {}
        interrupted = False
        try:
            for i, run in enumerate(runs):
                (gold,) = store.attributions(run.id)
                gold_pair = (gold.agent or "", gold.step_index or 0)
                try:
                    result = await aattribute(
                        store,
                        run.id,
                        method=method,
                        model=model,
                        with_ground_truth=with_ground_truth,
                        save=False,
                    )
                    predicted: tuple[str | None, int | None] = (result.agent, result.step)
                except MascopeError as exc:
                    failures[run.metadata_.get("file", run.id)] = str(exc)
                    predicted = (None, None)
                golds.append(gold_pair)
                pairs.append((gold_pair, predicted))
                if on_run is not None:
                    on_run(i + 1, len(runs))
        except asyncio.CancelledError:
            interrupted = True  # score the runs done so far: a partial table beats none
        store.close()
    await model.aclose()
    common = Counter(normalise_agent(a) for a, _ in golds).most_common(1)
    frequent = common[0][0] if common else ""
    shown = next((a for a, _ in golds if normalise_agent(a) == frequent), frequent)
    return WhoWhenEval(
        subset, method, model.model_id, with_ground_truth, score(pairs),
        score([(g, (None, 0)) for g in golds]), (shown, score([(g, (shown, None)) for g in golds])), failures,
        len(pairs), len(runs), interrupted,
    )  # fmt: skip


def _file_order(name: str) -> tuple[int, str]:
    digits = re.sub(r"\D", "", name)
    return (int(digits) if digits else 0, name)
