"""The stopping rule of adaptive self-consistency, against hand computations."""

from __future__ import annotations

import pytest

from mascope.agents import StrategySpec, vote_settled


@pytest.mark.parametrize(
    ("leader", "runner_up", "remaining", "confidence", "settled"),
    [
        (4, 0, 50, 0.95, True),  # P(Bin(5, 1/2) <= 4) = 31/32 = 0.969
        (3, 0, 50, 0.95, False),  # 15/16 = 0.9375
        (6, 1, 50, 0.95, True),  # 247/256 = 0.965
        (5, 1, 50, 0.95, False),  # 120/128 = 0.9375
        (3, 3, 50, 0.6, False),  # a tie never settles
        (3, 0, 2, 0.999, True),  # the runner-up cannot catch up in 2 draws
        (3, 1, 2, 0.999, False),  # it could tie: not certain, and 26/32 is short
        (1, 0, 50, 0.75, True),  # 3/4 exactly reaches 0.75
    ],
)
def test_vote_settled_matches_the_hand_computation(
    leader: int, runner_up: int, remaining: int, confidence: float, settled: bool
) -> None:
    assert vote_settled(leader, runner_up, remaining, confidence) is settled


def test_the_new_fields_have_sensible_defaults() -> None:
    spec = StrategySpec(kind="best_of_n")
    assert spec.concurrency == 4 and spec.first_finish is False and spec.stop_confidence is None
