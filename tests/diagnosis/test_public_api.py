"""The public diagnosis API: sync and async twins of one signature, many runs at
once, and the team of a stored run rebuilt (`from mascope import judge, ...`)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

import mascope
from mascope import Agent, Team, TraceStore
from mascope.agents import TurnContext, VerifyContext
from mascope.diagnosis import JudgeConfig
from mascope.errors import ConfigError, UserError
from mascope.models import ScriptedModel

from .test_attribution import failed_run
from .test_judge import answer


@pytest.mark.parametrize(
    "sync, asynchronous",
    [("judge", "ajudge"), ("attribute", "aattribute"), ("judge_many", "ajudge_many"),
     ("attribute_many", "aattribute_many")],
)  # fmt: skip
def test_each_sync_function_has_its_async_twins_signature(sync: str, asynchronous: str) -> None:
    assert inspect.signature(getattr(mascope, sync)) == inspect.signature(
        getattr(mascope, asynchronous)
    )
    assert inspect.iscoroutinefunction(getattr(mascope, asynchronous))


def test_judge_and_attribute_one_run_from_sync_code(store: TraceStore) -> None:
    rid = failed_run(store)
    judged = mascope.judge(store, rid[:8], model=ScriptedModel([answer({"FM-3.3": [2]})]))
    assert judged.present == ["FM-3.3"] and judged.run_id == rid
    assert {a.mode for a in store.annotations(rid) if a.annotator == "llm:scripted"} >= {"FM-3.3"}
    blame = mascope.attribute(
        store, rid, method="all-at-once",
        model=ScriptedModel([json.dumps({"agent": "solver", "step": 1, "reason": "2 + 3 is 5"})]),
    )  # fmt: skip
    assert (blame.agent, blame.step) == ("solver", 1)
    assert [a.agent for a in store.attributions(rid)] == ["solver"]


def test_a_model_given_twice_must_agree(store: TraceStore) -> None:
    rid = failed_run(store)
    with pytest.raises(ConfigError, match="disagree"):
        mascope.judge(store, rid, model="openai:a", config=JudgeConfig(model="openai:b"))


async def test_the_sync_twin_refuses_a_running_event_loop(store: TraceStore) -> None:
    rid = failed_run(store)
    with pytest.raises(Exception, match="ajudge"):
        mascope.judge(store, rid, model=ScriptedModel([answer()]))


def test_judge_many_judges_each_run_once(store: TraceStore) -> None:
    ids = [failed_run(store) for _ in range(3)]
    model = ScriptedModel([answer({"FM-1.1": [0]}) for _ in ids])
    report = mascope.judge_many(store, ids, model=model, concurrency=1)
    assert (report.total, report.judged, report.skipped) == (3, 3, 0)
    assert report.modes["FM-1.1"] == 3
    # Run again under the same configuration: nothing is judged twice.
    again = mascope.judge_many(store, ids, model=ScriptedModel([]), concurrency=1)
    assert (again.judged, again.skipped) == (0, 3)


def test_attribute_many_attributes_each_failed_run(store: TraceStore) -> None:
    ids = [failed_run(store) for _ in range(2)]
    said = json.dumps({"agent": "checker", "step": 2, "reason": "passed a wrong sum"})
    report = mascope.attribute_many(
        store, ids, method="all-at-once", model=ScriptedModel([said, said]), concurrency=1
    )
    assert report.judged == 2
    assert [[a.agent for a in store.attributions(r)] for r in ids] == [["checker"], ["checker"]]


# -- Team.from_run -------------------------------------------------------------------


def wrong_adder(ctx: TurnContext) -> str:
    return "ANSWER: 6"


def is_five(candidate: str, ctx: VerifyContext) -> bool:
    return candidate.strip() == "ANSWER: 5"


def test_a_stored_run_rebuilds_the_team_it_ran_with(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    team = Team(
        "adder", [Agent("adder", fn=wrong_adder)],
        stages=[{"agent": "adder", "verifier": "five", "max_rounds": 1}],
        verifiers={"five": is_five}, store=db,
    )  # fmt: skip
    first = team.run("Add 2 and 3.")
    assert first.status == "failed"
    store = TraceStore(db)
    rebuilt = Team.from_run(store, first.run_id)
    assert rebuilt.name == "adder" and rebuilt.agents["adder"].fn is wrong_adder
    assert rebuilt.run("Add 2 and 3.").status == "failed"  # the same team, run again
    store.close()


def test_an_imported_run_has_no_team_to_rebuild(store: TraceStore) -> None:
    rid = failed_run(store)  # written straight to the store: no spec, like an import
    with pytest.raises(UserError, match="cannot be re-run"):
        Team.from_run(store, rid)
