"""`mascope eval mast`: the judge against human MAST labels (MAD format)."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mascope.diagnosis import Agreement, JudgeConfig, JudgeFn, agreement, ajudge, cohen_kappa
from mascope.models import ChatModel
from mascope.taxonomy import MAST
from mascope.traces import Run, TraceStore, import_paths

PUBLISHED = {
    "o1 few-shot (MAST paper)": {
        "accuracy": 0.94,
        "precision": 0.83,
        "recall": 0.77,
        "f1": 0.80,
        "kappa": 0.77,
    },
    "o1 definitions only (MAST paper)": {"kappa": 0.58},
    "human annotators (MAST paper)": {"kappa": 0.88},
}


@dataclass
class MastEval:
    model: str
    traces: int
    pooled: Agreement
    per_mode: dict[str, Agreement]
    humans_kappa: float
    humans_pairs: dict[str, float] = field(default_factory=dict)
    not_judged: dict[str, str] = field(default_factory=dict)
    done: int = 0
    """Traces judged or tried (all `traces` unless interrupted)."""
    interrupted: bool = False
    """Cancelled part way (Ctrl-C): the agreement covers the `done` traces only."""


async def aevaluate_mast(
    file: str | Path,
    config: JudgeConfig,
    *,
    model: ChatModel | None = None,
    on_trace: Callable[[int, int], None] | None = None,
    judge: JudgeFn = ajudge,
) -> MastEval:
    """Judge every record of a MAD file and compare with its human labels.

    The human reference for a (trace, mode) is the majority of its annotators;
    modes a record's annotation round did not have are left out. Cancelled part
    way, it returns the agreement over the traces done, marked `interrupted`.
    `judge` is called instead of `mascope.diagnosis.ajudge` (same signature),
    to wrap or replay the judge's answers.
    """
    with tempfile.TemporaryDirectory(prefix="mascope-eval-") as tmp:
        store = TraceStore(Path(tmp) / "eval.db")
        import_paths(store, "mad", [file])
        runs = list(reversed(store.list_runs(limit=10_000, source="mad")))
        predicted: list[bool] = []
        reference: list[bool] = []
        by_mode: dict[str, tuple[list[bool], list[bool]]] = defaultdict(lambda: ([], []))
        annotators: dict[str, dict[tuple[str, str], bool]] = defaultdict(dict)
        not_judged: dict[str, str] = {}
        done = 0
        interrupted = False
        try:
            done = await _judge_all(
                store,
                runs,
                config,
                model,
                on_trace,
                predicted,
                reference,
                by_mode,
                annotators,
                not_judged,
                judge,
            )
        except _Interrupted as stopped:
            done, interrupted = stopped.done, True
        store.close()
    if model is not None:
        await model.aclose()
    pairs: dict[str, float] = {}
    for x, y in itertools.combinations(sorted(annotators), 2):
        shared = sorted(set(annotators[x]) & set(annotators[y]))
        if shared:
            pairs[f"{x} vs {y}"] = cohen_kappa(
                [annotators[x][k] for k in shared], [annotators[y][k] for k in shared]
            )
    humans = sum(pairs.values()) / len(pairs) if pairs else float("nan")
    return MastEval(
        model=config.model,
        traces=len(runs),
        pooled=agreement(predicted, reference),
        per_mode={m: agreement(p, r) for m, (p, r) in sorted(by_mode.items())},
        humans_kappa=humans,
        humans_pairs=pairs,
        not_judged=not_judged,
        done=done,
        interrupted=interrupted,
    )


class _Interrupted(Exception):
    def __init__(self, done: int):
        self.done = done


async def _judge_all(
    store: TraceStore,
    runs: list[Run],
    config: JudgeConfig,
    model: ChatModel | None,
    on_trace: Callable[[int, int], None] | None,
    predicted: list[bool],
    reference: list[bool],
    by_mode: dict[str, tuple[list[bool], list[bool]]],
    annotators: dict[str, dict[tuple[str, str], bool]],
    not_judged: dict[str, str],
    judge: JudgeFn,
) -> int:
    """Judge `runs` in order, adding to the tallies; a cancellation raises `_Interrupted` with the count done."""
    from mascope.errors import StructuredOutputError

    for i, run in enumerate(runs):
        labels = [a for a in store.annotations(run.id) if a.annotator.startswith("human:")]
        votes: dict[str, list[bool]] = defaultdict(list)
        try:
            judgement = await judge(store, run.id, config=config, model=model, save=False)
        except StructuredOutputError as exc:
            not_judged[run.id] = str(exc)
            judgement = None
        except asyncio.CancelledError:
            raise _Interrupted(i) from None
        # The human labels count only beside a judgement tried, so a partial table compares like with like.
        for a in labels:
            votes[a.mode].append(a.present)
            annotators[a.annotator][(run.id, a.mode)] = a.present
        if on_trace is not None:
            on_trace(i + 1, len(runs))
        if judgement is None:
            continue
        for mode in MAST.mode_ids:
            if mode not in votes or mode not in judgement.modes:
                continue
            human = sum(votes[mode]) * 2 > len(votes[mode])
            pred = judgement.modes[mode].present
            predicted.append(pred)
            reference.append(human)
            by_mode[mode][0].append(pred)
            by_mode[mode][1].append(human)
    return len(runs)


def eval_dict(result: MastEval) -> dict[str, Any]:
    return {
        "model": result.model,
        "traces": result.traces,
        "pooled": result.pooled.as_dict(),
        "per_mode": {m: a.as_dict() for m, a in result.per_mode.items()},
        "humans_kappa": result.humans_kappa,
        "humans_pairs": result.humans_pairs,
        "not_judged": result.not_judged,
        "published": PUBLISHED,
    }
