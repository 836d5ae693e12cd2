"""A rubric verifier or a manager whose model answers garbage: the run goes on by rule."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mascope import Agent, Team
from mascope.agents import Rubric
from mascope.cli import app
from mascope.models import ScriptedModel
from mascope.traces import TraceStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PASS = '{"passed": true, "score": 1.0, "feedback": "correct"}'


def test_a_rubric_that_cannot_answer_fails_the_verdict_and_the_run_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    model = ScriptedModel(
        ["ANSWER: 8", "I think it is fine", "yes, fine really", "24 - 9 - 7 = 8\nANSWER: 8", PASS]
    )
    team = Team(
        "sc",
        [Agent("solver", model=model)],
        stages=[{"agent": "solver", "verifier": "checker", "max_rounds": 3}],
        verifiers={"checker": Rubric("must be right", model=model)},
        store=db,
    )
    result = team.run("24 - 9 - 7?", ground_truth="8")
    assert (result.status, result.termination_reason) == ("succeeded", "verifier_passed")
    steps = TraceStore(db).steps(result.run_id)
    assert [(s.agent, s.kind) for s in steps] == [
        ("solver", "message"),
        ("checker", "model_call"),
        ("checker", "verdict"),
        ("solver", "message"),
        ("checker", "verdict"),
    ]
    raw, verdict = steps[1], steps[2]
    assert raw.content == "yes, fine really" and raw.error is not None
    assert "the rubric verifier 'checker' asked scripted for a verdict JSON" in raw.error
    assert verdict.content.startswith("FAILED") and "no JSON value" in verdict.content
    assert verdict.data["passed"] is False
    # the solver was told why it was sent back
    assert "no verdict" in (model.calls[3].messages[-1].content or "")
    for s in steps:
        assert "_RubricAnswer" not in s.content and "_RubricAnswer" not in (s.error or "")


def test_a_manager_that_cannot_choose_falls_back_to_round_robin(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    manager = ScriptedModel(["whoever", "no idea", '{"next_speaker": "critic"}'])
    team = Team(
        "chat", [Agent("mgr", model=manager), Agent("writer", fn=lambda ctx: "draft"), Agent("critic", fn=lambda ctx: "FINAL ANSWER: fine")],
        topology="group_chat", speaker_selection="manager", manager="mgr",
        termination={"max_rounds": 3, "stop_phrase": "FINAL ANSWER:"}, store=db,
    )  # fmt: skip
    result = team.run("write")
    assert (result.status, result.answer) == ("succeeded", "fine")
    steps = TraceStore(db).steps(result.run_id)
    assert [(s.agent, s.kind) for s in steps] == [
        ("mgr", "model_call"),
        ("mgr", "event"),
        ("writer", "message"),
        ("mgr", "message"),
        ("critic", "message"),
    ]
    assert steps[0].content == "no idea"
    assert "group chat manager 'mgr'" in (steps[0].error or "")
    assert steps[1].data["event"] == "manager_fallback" and steps[1].data["selected"] == "writer"


def test_one_scripted_model_is_shared_in_order_by_agents_and_the_rubric(tmp_path: Path) -> None:
    replies = tmp_path / "replies.yaml"
    replies.write_text(
        json.dumps(
            [
                "ANSWER: 9",
                '{"passed": false, "score": 0.0, "feedback": "recount the muffins"}',
                "24 - 9 - 7 = 8\nANSWER: 8",
                PASS,
            ]
        )
    )
    db = tmp_path / "s.db"
    result = CliRunner().invoke(
        app,
        [
            "run", str(EXAMPLES / "solver_checker.yaml"), "--task", "24 muffins, 9 and 7 sold?",
            "-m", f"scripted:{replies}", "--expect", "8", "--db", str(db), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["status"], data["answer"]) == ("succeeded", "24 - 9 - 7 = 8\nANSWER: 8")
    steps = TraceStore(db).steps(data["run_id"])
    assert [s.content for s in steps] == [
        "ANSWER: 9",
        "FAILED (score 0.00): recount the muffins",
        "24 - 9 - 7 = 8\nANSWER: 8",
        "PASSED (score 1.00): correct",
    ]
