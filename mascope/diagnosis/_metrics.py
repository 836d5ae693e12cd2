"""Agreement metrics for binary labels, with intervals that behave on small samples."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Cohen's kappa of two raters' binary labels (1.0 when both are constant and equal)."""
    if len(a) != len(b):
        raise ValueError("the two label lists differ in length")
    n = len(a)
    if n == 0:
        return float("nan")
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1 - expected)


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion (sound for small n and for 0 or n successes)."""
    if total == 0:
        return (float("nan"), float("nan"))
    p = successes / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_kappa(
    a: Sequence[bool], b: Sequence[bool], *, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile bootstrap interval for kappa (resampling items)."""
    n = len(a)
    if n == 0:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    values = []
    for _ in range(resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        k = cohen_kappa([a[i] for i in idx], [b[i] for i in idx])
        if not math.isnan(k):
            values.append(k)
    values.sort()
    return (
        values[int(0.025 * len(values))],
        values[min(len(values) - 1, int(0.975 * len(values)))],
    )


@dataclass
class Agreement:
    """How a predicted labelling agrees with a reference one."""

    n: int
    tp: int
    fp: int
    fn: int
    tn: int
    kappa: float
    kappa_ci: tuple[float, float]

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.n if self.n else float("nan")

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if math.isnan(p) or math.isnan(r) or p + r == 0:
            return float("nan") if math.isnan(p) or math.isnan(r) else 0.0
        return 2 * p * r / (p + r)

    @property
    def accuracy_ci(self) -> tuple[float, float]:
        return wilson(self.tp + self.tn, self.n)

    @property
    def precision_ci(self) -> tuple[float, float]:
        return wilson(self.tp, self.tp + self.fp)

    @property
    def recall_ci(self) -> tuple[float, float]:
        return wilson(self.tp, self.tp + self.fn)

    def as_dict(self) -> dict[str, object]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 4)

        return {
            "n": self.n, "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
            "accuracy": clean(self.accuracy), "accuracy_ci": [clean(v) for v in self.accuracy_ci],
            "precision": clean(self.precision), "precision_ci": [clean(v) for v in self.precision_ci],
            "recall": clean(self.recall), "recall_ci": [clean(v) for v in self.recall_ci],
            "f1": clean(self.f1), "kappa": clean(self.kappa), "kappa_ci": [clean(v) for v in self.kappa_ci],
        }  # fmt: skip


def agreement(predicted: Sequence[bool], reference: Sequence[bool], *, seed: int = 0) -> Agreement:
    pairs = list(zip(predicted, reference, strict=True))
    tp = sum(p and r for p, r in pairs)
    fp = sum(p and not r for p, r in pairs)
    fn = sum(r and not p for p, r in pairs)
    tn = sum(not p and not r for p, r in pairs)
    return Agreement(
        len(pairs),
        tp,
        fp,
        fn,
        tn,
        cohen_kappa(predicted, reference),
        bootstrap_kappa(predicted, reference, seed=seed),
    )
