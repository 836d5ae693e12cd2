"""The repair-rate benchmark on a function-agent team whose reader misreads every other time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mascope import Agent, Team
from mascope.agents import TurnContext, sampling
from mascope.cli import app
from mascope.evals import aevaluate_repair
from mascope.evals._eval_repair import abaseline, arepair
from mascope.evals._repair_tasks import RepairTask, code_passes, make_tasks, team_spec
from mascope.models import ScriptedModel
from mascope.traces import TraceStore

runner = CliRunner()
CALLS = {"reader": 0}


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    CALLS["reader"] = 0
    yield


@sampling
def reader(ctx: TurnContext) -> str:
    """Reads the two numbers of the task; misreads the first on its 1st, 3rd, 5th ... call."""
    a, b = (int(t) for t in ctx.task.split() if t.isdigit())
    wrong = CALLS["reader"] % 2 == 0
    CALLS["reader"] += 1
    return f"numbers: {a + 1 if wrong else a} {b}"


def adder(ctx: TurnContext) -> str:
    numbers = [int(t) for t in (ctx.last_output or "").split() if t.lstrip("-").isdigit()]
    return f"ANSWER: {sum(numbers)}"


def make_team(shape: str, store: TraceStore) -> Team:
    return Team("reader-adder", [Agent("reader", fn=reader), Agent("adder", fn=adder)], store=store)


TASK = RepairTask("t0", "reader-adder", "Add 2 and 3", "5")


async def _failed_run(store: TraceStore) -> tuple[Team, str]:
    team = make_team("reader-adder", store)
    result = await team.arun(TASK.task, ground_truth=TASK.ground_truth)
    assert result.status == "failed" and result.answer == "ANSWER: 6"
    return team, result.run_id


async def test_the_right_correction_repairs_and_a_wrong_one_does_not(store: TraceStore) -> None:
    team, rid = await _failed_run(store)
    right = await arepair(store, rid, team=team, step=0, content="numbers: 2 3", samples=3)
    wrong = await arepair(store, rid, team=team, step=0, content="numbers: 2 4", samples=3)
    assert (right.how, right.successes, right.n) == ("fork", 3, 3)
    assert (wrong.how, wrong.successes, wrong.n) == ("fork", 0, 3)
    # Blaming the adder, which only adds what it was given, repairs nothing.
    later = await arepair(store, rid, team=team, step=1, content=None, samples=3)
    assert (later.how, later.successes) == ("re-roll", 0)
    # Every repair is a child run of the failed run, marked as such.
    children = store.child_runs(rid)
    assert len(children) == 9
    assert all((c.metadata_ or {})["repair"]["of"] == rid for c in children)


async def test_re_roll_from_the_blamed_step_and_the_baseline_count_as_drawn(
    store: TraceStore,
) -> None:
    team, rid = await _failed_run(store)  # reader call 0 misread
    # Calls 1..4 read right, wrong, right, wrong: 2 of 4 re-runs succeed.
    base = await abaseline(store, rid, team=team, samples=4)
    assert (base.how, base.successes, base.n) == ("from scratch", 2, 4)
    # Calls 5..7: right, wrong, right.
    rerolled = await arepair(store, rid, team=team, step=0, content=None, samples=3)
    assert (rerolled.how, rerolled.step, rerolled.successes) == ("re-roll", 0, 2)


def _scripted() -> ScriptedModel:
    a2p = {
        "abduction": "misread the first number", "agent": "reader", "step": 0,
        "action": "numbers: 2 3", "would_succeed": True, "prediction": "the sum is 5",
    }  # fmt: skip
    blame = {"agent": "adder", "step": 1, "reason": "the sum is wrong"}
    return ScriptedModel([json.dumps(a2p), json.dumps(blame)])


async def test_repair_rate_of_each_method_beside_the_baseline(tmp_path: Path) -> None:
    model = _scripted()
    r = await aevaluate_repair(
        runs=1, samples=4, methods=["reroll", "a2p", "all-at-once"], model=model,
        db=tmp_path / "r.db", tasks=[TASK], build=make_team, reroll_samples=4, reroll_max_replays=16,
    )  # fmt: skip
    # Hand-computed: reader call 0 fails the generated run; calls 1..4 are the
    # baseline (right, wrong, right, wrong). reroll finds that re-rolling the
    # reader helps and re-rolling the adder never does, and its correction is
    # a re-roll's right reading; a2p proposes the right reading; all-at-once
    # blames the adder, whose re-runs add the same misread numbers.
    assert (r.runs, r.attempts) == (1, 1)
    assert (r.baseline.successes, r.baseline.trials) == (2, 4)
    by = {s.method: s for s in r.methods}
    assert (by["reroll"].successes, by["reroll"].trials) == (4, 4)
    assert by["reroll"].how == {"fork": 1}
    assert by["reroll"].replays[0] > 0
    assert (by["a2p"].successes, by["a2p"].trials, by["a2p"].model_calls) == (4, 4, [1])
    assert (by["all-at-once"].successes, by["all-at-once"].how) == (0, {"re-roll": 1})
    model.assert_all_used()


async def test_started_again_it_reuses_what_the_store_holds(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    tasks = [TASK, RepairTask("t1", "reader-adder", "Add 4 and 1", "5")]
    first = await aevaluate_repair(
        runs=1, samples=2, methods=["reroll"], db=db, tasks=tasks, build=make_team
    )
    calls = CALLS["reader"]
    again = await aevaluate_repair(
        runs=1, samples=2, methods=["reroll"], db=db, tasks=tasks, build=make_team
    )
    assert CALLS["reader"] == calls  # nothing re-run
    assert again.reused == 3  # the generated run, the baseline and reroll's outcome
    assert again.methods[0].as_dict() == first.methods[0].as_dict()
    assert again.baseline.as_dict() == first.baseline.as_dict()


def test_evaluations_measured_apart_merge_into_the_one_over_all_their_runs() -> None:
    from mascope.evals._eval_repair import BASELINE, Outcome, RepairEval, RepairScore, Trial

    # (shape, baseline successes, reroll's successes, its diagnosis's replays, its error)
    runs = [("a", 1, 3, 2, None), ("b", 0, 0, 5, "no step"), ("a", 2, 1, 1, None)]

    def evaluation(part: list[tuple[str, int, int, int, str | None]]) -> RepairEval:
        baseline, reroll = RepairScore(BASELINE), RepairScore("reroll")
        tried: dict[str, list[int]] = {}
        for shape, base, fixed, replays, error in part:
            baseline.add(
                shape,
                Outcome(BASELINE, None, None, None, 0, 0, 0.0, Trial(BASELINE, None, base, 3)),
            )
            how = "re-roll" if error is None else BASELINE
            trial = Trial(how, 0, fixed, 3)
            reroll.add(
                shape, Outcome("reroll", "r", 0, None, replays, 0, 2.0 * replays, trial, error)
            )
            tried.setdefault(shape, [0, 0])[1] += 2  # one success before each failed run
            tried[shape][0] += 1
        return RepairEval(
            runs=len(part), wanted=len(part), attempts=2 * len(part), attempts_by_shape=tried,
            baseline=baseline, methods=[reroll], samples=3, temperature=0.8, model=None,
            seconds=10.0, reused=len(part),
        )  # fmt: skip

    merged = evaluation(runs[:1])
    merged.merge(evaluation(runs[1:]))
    assert merged.as_dict() == evaluation(runs).as_dict()


async def test_a_method_that_names_no_step_gets_the_baseline(tmp_path: Path) -> None:
    # Unusable answers twice (the second is the repair re-ask): no step named.
    model = ScriptedModel(["not json", "still not json"])
    r = await aevaluate_repair(
        runs=1, samples=2, methods=["all-at-once"], model=model, db=tmp_path / "r.db",
        tasks=[TASK], build=make_team,
    )  # fmt: skip
    score = r.methods[0]
    assert score.how == {"from scratch": 1} and score.errors == 1
    assert (score.successes, score.trials) == (r.baseline.successes, r.baseline.trials)


def test_generated_tasks_are_seeded_and_code_is_checked() -> None:
    first = [t for _, t in zip(range(6), make_tasks(7), strict=False)]
    assert first == [t for _, t in zip(range(6), make_tasks(7), strict=False)]
    assert {t.shape for t in first} == {"solver-checker", "solver-reviewer", "planner-coder-tester"}
    code = "```python\ndef square(x):\n    return x * x\n```"
    assert code_passes(code, "assert square(3) == 9")[0]
    assert not code_passes(code.replace("x * x", "x + x"), "assert square(3) == 9")[0]
    spec = team_spec("planner-coder-tester", temperature=0.9)
    assert spec["scoring"]["function"].endswith(":code_passes")
    assert {a["temperature"] for a in spec["agents"]} == {0.9}
    # Arithmetic is scored on the last number stated, not on the truth appearing somewhere.
    assert team_spec("solver-checker")["scoring"] == {"match": "numeric", "extract": "last_number"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--runs", "0"], "--runs must be at least 1"),
        (["--samples", "0"], "--samples must be at least 1"),
        (["--methods", "rerol"], "unknown method 'rerol'"),
        (["--shapes", "solver"], "unknown team shape 'solver'"),
        (["--temperature", "0"], "--temperature must be above 0"),
        (["--runs", "5", "--max-attempts", "2"], "--max-attempts must be at least --runs"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, args: list[str], says: str
) -> None:
    db = tmp_path / "r.db"
    result = runner.invoke(app, ["eval", "repair", "--methods", "reroll", *args, "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not db.exists()


@pytest.mark.slow
async def test_the_demo_team_on_the_embedded_model_fails_and_is_repaired(tmp_path: Path) -> None:
    # Real SmolLM2 runs at temperature 1.0: some tasks fail, and every repair and
    # re-run of a failed one is a recorded child run of it.
    r = await aevaluate_repair(
        runs=1, seed=3, samples=1, methods=["reroll"], shapes=["solver-checker"],
        temperature=1.0, reroll_samples=1, reroll_max_replays=3, max_attempts=8,
        db=tmp_path / "r.db",
    )  # fmt: skip
    ok, n = r.attempts_by_shape["solver-checker"]
    # At 1.0 the first task of seed 3 failed in each of the runs measured, and
    # there are 8 tries: a failed run is collected (skipping the checks when
    # none was would let this test pass having checked nothing).
    assert n == r.attempts and r.runs == 1 <= n - ok
    assert r.baseline.trials == 1 and r.methods[0].trials == 1
    store = TraceStore(tmp_path / "r.db")
    failed = store.list_runs(status="failed", limit=100)
    assert any(store.child_runs(f.id) for f in failed if f.parent_run_id is None)
    store.close()
