"""Kappa, F1 and intervals against values computed by hand."""

from __future__ import annotations

import math

import pytest

from mascope.diagnosis._metrics import agreement, cohen_kappa, wilson


def test_kappa_by_hand() -> None:
    # 10 items: both yes 3, both no 4, A-only 2, B-only 1.
    a = [True] * 3 + [False] * 4 + [True] * 2 + [False]
    b = [True] * 3 + [False] * 4 + [False] * 2 + [True]
    # p_o = 7/10; p_a = 5/10, p_b = 4/10; p_e = .5*.4 + .5*.6 = .5; kappa = (.7-.5)/(.5) = .4
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa([True, False], [True, False]) == 1.0
    assert cohen_kappa([True, True], [True, True]) == 1.0
    assert cohen_kappa([True, False, True, False], [False, True, False, True]) == pytest.approx(
        -1.0
    )


def test_precision_recall_f1_by_hand() -> None:
    predicted = [True, True, True, False, False, False]
    reference = [True, True, False, True, False, False]
    stats = agreement(predicted, reference)
    assert (stats.tp, stats.fp, stats.fn, stats.tn) == (2, 1, 1, 2)
    assert stats.precision == pytest.approx(2 / 3) and stats.recall == pytest.approx(2 / 3)
    assert stats.f1 == pytest.approx(2 / 3) and stats.accuracy == pytest.approx(4 / 6)
    low, high = stats.kappa_ci
    assert low <= stats.kappa <= high


def test_wilson_interval() -> None:
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_undefined_values_are_nan_not_errors() -> None:
    stats = agreement([False, False], [False, False])
    assert math.isnan(stats.precision) and math.isnan(stats.recall)
    assert stats.as_dict()["precision"] is None
