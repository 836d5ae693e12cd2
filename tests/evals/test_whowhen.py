"""Who&When scoring against hand-computed values, and the eval command."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mascope.cli import app
from mascope.evals._eval_whowhen import normalise_agent, score, substring_hit


def test_substring_quirk_of_the_original_script() -> None:
    assert substring_hit(1, 12) and substring_hit(2, 12) and substring_hit(12, 12)
    assert not substring_hit(12, 1) and not substring_hit(3, None)


def test_scores_by_hand() -> None:
    pairs = [
        (("WebSurfer", 1), ("Websurfer", 12)),  # agent right (spelling), step wrong; substring hit
        (("Orchestrator", 5), ("Orchestrator (thought)", 5)),  # both right
        (("Coder", 10), ("Planner", 8)),  # within 3, not within 1
        (("Coder", 3), (None, None)),  # nothing predicted
    ]
    s = score(pairs)
    assert (s.n, s.step_exact, s.step_substring, s.step_within_1, s.step_within_3, s.agent) == (
        4,
        1,
        2,
        1,
        2,
        2,
    )
    assert s.as_dict()["step_exact"] == 0.25
    assert normalise_agent("Data_Analysis-Expert") == normalise_agent("data analysis expert")


def test_eval_whowhen_with_a_scripted_attributor(tmp_path: Path, datasets: Path) -> None:
    script = tmp_path / "s.json"
    script.write_text(json.dumps([json.dumps({"agent": "Nobody", "step": 0, "reason": "r"})] * 3))
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "eval",
            "whowhen",
            str(datasets / "who_and_when"),
            "--limit",
            "3",
            "-m",
            f"scripted:{script}",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["scores"]["n"] == 3
    golds = [
        json.loads((datasets / "who_and_when" / "Algorithm-Generated" / f"{i}.json").read_text())
        for i in (1, 2, 3)
    ]
    expected = sum(int(g["mistake_step"]) == 0 for g in golds) / 3
    assert data["scores"]["step_exact"] == expected == data["always_step_0"]["step_exact"]
    assert data["published"]["A2P"] == [47.5, 65.4]
    table = runner.invoke(
        app,
        [
            "eval",
            "whowhen",
            str(datasets / "who_and_when"),
            "--limit",
            "3",
            "-m",
            f"scripted:{script}",
        ],
    )
    assert "always step 0" in table.stdout and "CHIEF" in table.stdout
