"""The expected-utility rule that picks n or abstains, checked against hand computations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mascope.agents import (
    Calibration,
    StrategySpec,
    VerifierRates,
    expected_utility,
    plan_draws,
    read_calibration,
    usable_rates,
)
from mascope.errors import ConfigError


def rates(**kw: object) -> VerifierRates:
    base: dict[str, object] = {
        "candidates": 40, "right": 20, "wrong": 20, "accepted_wrong": 4, "rejected_right": 2,
        "fpr": 0.2, "fpr_interval": (0.08, 0.42), "fnr": 0.1, "fnr_interval": (0.03, 0.3),
        "base_rate": 0.5, "base_rate_interval": (0.35, 0.65), "task_rates": [],
    }  # fmt: skip
    return VerifierRates.model_validate({**base, **kw})


def test_expected_utility_for_one_base_rate_matches_a_hand_computation() -> None:
    # p = 0.5, a = 0.9, f = 0.2, penalty 4: gain per stop 0.45 - 4 * 0.5 * 0.2 = 0.05;
    # a draw fails with q = 1 - 0.45 - 0.1 = 0.45, so EU(1) = 0.05 and EU(2) = 0.05 * 1.45.
    kw = {"base_rates": [0.5], "fpr": 0.2, "fnr": 0.1, "penalty": 4.0}
    assert expected_utility(1, **kw) == pytest.approx(0.05)  # type: ignore[arg-type]
    assert expected_utility(2, **kw) == pytest.approx(0.0725)  # type: ignore[arg-type]
    assert expected_utility(3, **kw) == pytest.approx(0.05 * (1 + 0.45 + 0.45**2))  # type: ignore[arg-type]
    assert expected_utility(0, **kw) == 0.0  # type: ignore[arg-type]


def test_over_easy_and_hard_tasks_the_best_n_is_one_when_later_draws_are_mostly_wrong() -> None:
    # Easy p = 0.9: gain 0.81 - 4 * 0.1 * 0.2 = 0.73, q = 0.17.
    # Hard p = 0.1: gain 0.09 - 4 * 0.9 * 0.2 = -0.63, q = 0.73.
    # EU(1) = (0.73 - 0.63) / 2 = 0.05; EU(2) = (0.73 * 1.17 - 0.63 * 1.73) / 2 = -0.1179.
    kw = {"base_rates": [0.9, 0.1], "fpr": 0.2, "fnr": 0.1, "penalty": 4.0}
    assert expected_utility(1, **kw) == pytest.approx(0.05)  # type: ignore[arg-type]
    assert expected_utility(2, **kw) == pytest.approx(-0.1179)  # type: ignore[arg-type]
    plan = plan_draws(rates(task_rates=[0.9, 0.1]), max_n=8, penalty=4.0)
    assert (plan.n, plan.abstain) == (1, False)
    assert plan.utility == pytest.approx(0.05)


def test_the_plan_draws_every_sample_allowed_when_each_draw_gains_and_abstains_when_none_does() -> (
    None
):
    assert plan_draws(rates(task_rates=[0.5]), max_n=5, penalty=4.0).n == 5
    # Penalty 6: gain 0.45 - 6 * 0.5 * 0.2 = -0.15 < 0 at every n: abstaining (0) is better.
    plan = plan_draws(rates(task_rates=[0.5]), max_n=5, penalty=6.0)
    assert plan.abstain and plan.n == 1 and plan.utility == pytest.approx(-0.15)


def test_a_cost_per_draw_makes_fewer_draws_better() -> None:
    # Gain 0.05 - 0.04 = 0.01 per stop; with a cost of 0.06 every draw loses.
    assert plan_draws(rates(task_rates=[0.5]), max_n=5, penalty=4.0, sample_cost=0.04).n == 5
    assert plan_draws(rates(task_rates=[0.5]), max_n=5, penalty=4.0, sample_cost=0.06).abstain


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"right": 9}, "9 right and 20 wrong judged candidates (at least 10 of each"),
        ({"wrong": 3}, "20 right and 3 wrong"),
        ({"fpr_interval": (0.1, 0.7)}, "its FPR interval [0.10, 0.70] is wider than 0.5"),
    ],
)
def test_too_few_labelled_candidates_refuse_to_drive_a_stopping_rule(
    tmp_path: Path, change: dict[str, object], needle: str
) -> None:
    cal = Calibration(
        team="t", team_digest="d", created_at="now", runs=1, tasks=1,
        verifiers={"check": rates(**change)},
    )  # fmt: skip
    with pytest.raises(ConfigError) as exc:
        usable_rates(cal, "check", tmp_path / "c.json")
    message = str(exc.value)
    assert needle in message and "calibrate on more tasks" in message and "\n" not in message
    assert "FPR 0.20 [" in message  # the interval is reported


def test_a_calibration_file_for_another_team_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    Calibration(
        team="other", team_digest="abc", created_at="now", runs=1, tasks=1, verifiers={}
    ).write(path)
    with pytest.raises(ConfigError, match="was made for team 'other'"):
        read_calibration(path, team="mine", digest="abc")
    with pytest.raises(ConfigError, match="another version of team 'other'"):
        read_calibration(path, team="other", digest="xyz")
    assert read_calibration(path, team="other", digest="abc").team == "other"
    path.write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(ConfigError, match="not a mascope verifier calibration file"):
        read_calibration(path, team="other", digest="abc")


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"kind": "best_of_n", "penalty": 4.0}, "penalty and calibration go together"),
        ({"kind": "best_of_n", "calibration": "c.json"}, "penalty and calibration go together"),
        ({"kind": "self_consistency", "penalty": 4.0, "calibration": "c.json"}, "penalty works only with kind best_of_n or best_of_majority"),
        ({"kind": "best_of_n", "sample_cost": 0.1}, "sample_cost is used only with penalty"),
    ],
)  # fmt: skip
def test_impossible_calibration_settings_are_refused(
    fields: dict[str, object], needle: str
) -> None:
    with pytest.raises(ValueError, match=needle):
        StrategySpec.model_validate(fields)
