"""The `reroll` attribution on function-agent teams whose faults fire with a seeded probability."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mascope import Agent, Team
from mascope.agents import TurnContext, sampling
from mascope.cli import app
from mascope.diagnosis import aattribute
from mascope.diagnosis._reroll import aestimate
from mascope.errors import NotFoundError, UserError
from mascope.evals import aevaluate_planted
from mascope.traces import TraceStore

runner = CliRunner()

# Each stage adds 1 to what the stage before it said; a faulty stage adds 2
# with probability FAULT[name], drawn from one seeded stream.
FAULT: dict[str, float] = {}
RNG = random.Random(0)
CRASH = {"on": False}


@pytest.fixture(autouse=True)
def _seeded() -> Iterator[None]:
    RNG.seed(1234)
    FAULT.clear()
    CRASH["on"] = False
    yield
    FAULT.clear()


def _add_one(ctx: TurnContext, name: str) -> str:
    previous = int((ctx.last_output or "0").split()[-1])
    wrong = name in FAULT and RNG.random() < FAULT[name]
    if wrong and CRASH["on"]:
        raise RuntimeError(f"{name} fell over")
    return f"{name}: {previous + (2 if wrong else 1)}"


@sampling
def stage_a(ctx: TurnContext) -> str:
    return _add_one(ctx, "a")


@sampling
def stage_b(ctx: TurnContext) -> str:
    return _add_one(ctx, "b")


@sampling
def stage_c(ctx: TurnContext) -> str:
    return _add_one(ctx, "c")


def stage_d(ctx: TurnContext) -> str:
    return f"ANSWER: {(ctx.last_output or '0').split()[-1]}"


def deterministic(ctx: TurnContext) -> str:
    return "ANSWER: 3"


def counting_team(store: TraceStore) -> Team:
    agents = [
        Agent("a", fn=stage_a),
        Agent("b", fn=stage_b),
        Agent("c", fn=stage_c),
        Agent("d", fn=stage_d),
    ]
    return Team("count", agents, store=store)


async def failed_run(team: Team, want: dict[int, str] | None = None) -> str:
    """Run the team until a run fails (with step i saying want[i], when given)."""
    for _ in range(200):
        r = await team.arun("Count to 3, one stage at a time.", ground_truth="3")
        said = {s.index: s.content for s in team.store.steps(r.run_id)}
        if r.status == "failed" and all(said.get(i) == text for i, text in (want or {}).items()):
            return r.run_id
    raise AssertionError("the fault never fired")


@pytest.mark.parametrize("rate", [0.5, 0.8])
async def test_finds_the_injected_step_not_an_earlier_or_later_one(
    store: TraceStore, rate: float
) -> None:
    FAULT["c"] = rate  # steps: a 0, b 1, c 2, d 3
    team = counting_team(store)
    rid = await failed_run(team)
    # One at a time, so the seeded draws come in the same order on every run of the test.
    result = await aattribute(store, rid, method="reroll", team=team, concurrency=1)
    assert (result.agent, result.step, result.point_of_no_return) == ("c", 2, 2)
    assert result.decided and result.verified
    curve = {p["step"]: p for p in result.curve}
    # From the injected step a re-roll can succeed; from the step after it none does.
    assert curve[2]["successes"] > 0 and curve[2]["low"] > 0
    assert curve[3]["successes"] == 0 and curve[3]["n"] >= 12
    # "None succeeded" is only believed after enough tries for c's success rate:
    # had step 3 succeeded as often as step 2, that many failures would be under 1 in 100.
    odds = (1 - curve[2]["s"]) ** curve[3]["n"]
    assert odds < 0.01 or curve[3]["n"] >= 36
    # An earlier step's re-rolls also re-run c: they succeed no more often than from c.
    for k in (0, 1):
        if k in curve:
            assert curve[k]["low"] <= curve[2]["high"]
    assert result.replays_used == len(result.replays) <= 60
    # The suggested correction is c's own output in a re-roll that succeeded.
    assert result.intervention == "c: 3"
    replay = store.get_run(result.replay_run_id or "")
    assert replay.status == "succeeded" and replay.parent_run_id == rid and replay.fork_step == 2


async def test_replays_are_child_runs_and_the_curve_is_stored(store: TraceStore) -> None:
    FAULT["c"] = 0.5
    team = counting_team(store)
    rid = await failed_run(team)
    result = await aattribute(store, rid, method="reroll", team=team)
    children = store.child_runs(rid)
    assert len(children) == result.replays_used
    probed = {p["step"] for p in result.curve}
    for child in children:
        assert child.parent_run_id == rid and child.fork_step in probed
        assert (child.intervention or {})["kind"] == "re-roll"
        steps = store.steps(child.id)
        # Steps before the re-rolled one are the parent's, as recorded.
        parent = store.steps(rid)
        assert [s.content for s in steps[: child.fork_step]] == [
            s.content for s in parent[: child.fork_step]
        ]
    (stored,) = store.attributions(rid)
    assert (stored.method, stored.agent, stored.step_index, stored.verified) == (
        "reroll",
        "c",
        2,
        True,
    )
    assert stored.replay_run_id == result.replay_run_id and "S(k)" in stored.reason
    meta = store.get_run(rid).metadata_["reroll"]
    assert meta["decisive_step"] == 2 and [p["step"] for p in meta["curve"]] == sorted(probed)


async def test_s_of_k_matches_the_hand_computed_rate(store: TraceStore) -> None:
    # b and c each go wrong half the time, independently. In the recorded run b
    # was right and c wrong, so: from a or b both are drawn again, S = 0.5 * 0.5;
    # from c only c is, S = 0.5; from d nothing can go right, S = 0.
    FAULT.update(b=0.5, c=0.5)
    team = counting_team(store)
    rid = await failed_run(team, want={1: "b: 2", 2: "c: 4"})
    expected = {0: 0.25, 1: 0.25, 2: 0.5, 3: 0.0}
    for step, s in expected.items():
        probe = await aestimate(store, rid, step=step, samples=60, team=team, concurrency=1)
        low, high = probe.interval
        assert probe.n == 60 and low <= s <= high, (step, probe)
        if s:
            # Tight enough to tell the rates apart: 0.25 and 0.5 are not both inside.
            assert not low <= (0.5 if s == 0.25 else 0.25) <= high
    # The largest drop is c's (0.5), not b's (S rises from b to c: b's output was a good draw).
    result = await aattribute(store, rid, method="reroll", team=team, max_replays=200)
    assert (result.agent, result.step) == ("c", 2)


async def test_a_killed_search_resumes_without_redoing_replays(store: TraceStore) -> None:
    FAULT["c"] = 0.5
    team = counting_team(store)
    rid = await failed_run(team)
    # A budget too small to decide: what was measured is reported, nothing is blamed or stored.
    first = await aattribute(store, rid, method="reroll", team=team, max_replays=4)
    assert first.decided is False and first.step is None and first.agent is None
    assert "undecided" in first.reason and store.attributions(rid) == []
    done = len(store.child_runs(rid))
    assert done == first.replays_used == 4
    again = await aattribute(store, rid, method="reroll", team=team)
    assert again.step == 2
    # The four finished re-rolls were counted, not redone.
    assert len(store.child_runs(rid)) == again.replays_used
    assert any("counted, not redone" in n for n in again.notes)


async def test_a_time_budget_stops_new_rerolls_and_reports_what_was_measured(
    store: TraceStore,
) -> None:
    FAULT["c"] = 0.5
    team = counting_team(store)
    rid = await failed_run(team)
    told: list[tuple[int, int]] = []
    # A budget already spent: no re-roll starts, nothing is blamed, the reason says why.
    result = await aattribute(
        store, rid, method="reroll", team=team, max_seconds=1e-9,
        on_replay=lambda done, most: told.append((done, most)),
    )  # fmt: skip
    assert result.decided is False and result.step is None and result.replays_used == 0
    assert "time budget" in result.reason and told == [(0, 60)] and result.curve == []
    assert store.child_runs(rid) == [] and store.attributions(rid) == []
    told.clear()
    # A generous one changes nothing, and the caller is told of every re-roll.
    result = await aattribute(
        store, rid, method="reroll", team=team, max_seconds=3600, concurrency=1,
        on_replay=lambda done, most: told.append((done, most)),
    )  # fmt: skip
    assert (result.agent, result.step) == ("c", 2)
    assert told == [(i, 60) for i in range(result.replays_used + 1)]


async def test_a_crashing_replay_is_a_failed_reroll(store: TraceStore) -> None:
    FAULT["c"] = 0.5
    team = counting_team(store)
    rid = await failed_run(team)
    CRASH["on"] = True  # from now on c's fault is an exception: a re-roll that meets it crashes
    result = await aattribute(store, rid, method="reroll", team=team)
    assert (result.agent, result.step) == ("c", 2) and result.verified
    crashed = [x for x in result.replays if x["status"] == "error"]
    assert crashed and all(store.get_run(x["run_id"]).status == "error" for x in crashed)
    assert any("crashed" in n for n in result.notes)


async def test_bad_input_is_one_line_and_writes_nothing(store: TraceStore, datasets: Path) -> None:
    from mascope.traces import import_paths

    FAULT["c"] = 0.5
    team = counting_team(store)
    rid = await failed_run(team)
    with pytest.raises(NotFoundError, match="no run 'NOPE'"):
        await aattribute(store, "NOPE", method="reroll", team=team)
    ok = store.start_run(team="count", task="t", spec=team.spec.dump())
    with pytest.raises(UserError, match="still running"):
        await aattribute(store, ok, method="reroll", team=team)
    store.finish_run(ok, status="succeeded")
    with pytest.raises(UserError, match="succeeded; there is no failure"):
        await aattribute(store, ok, method="reroll", team=team)
    import_paths(store, "whowhen", [datasets / "who_and_when" / "Hand-Crafted" / "1.json"])
    imported = store.list_runs(source="whowhen")[0].id
    with pytest.raises(UserError, match=r"imported .* cannot be re-run"):
        await aattribute(store, imported, method="reroll")
    # A team of plain (non-sampling) functions: every re-roll would repeat the run.
    plain = Team("plain", [Agent("solo", fn=deterministic)], store=store)
    r = await plain.arun("What is 1 + 1?", ground_truth="2")
    with pytest.raises(UserError, match=r"deterministic .* unless they sample"):
        await aattribute(store, r.run_id, method="reroll", team=plain)
    # Model agents at temperature 0, without --temperature.
    cold = Team("cold", [Agent("solo", model="scripted:[]", temperature=0)], store=store)
    with pytest.raises(UserError, match=r"temperature 0.*--temperature"):
        await aattribute(store, rid, method="reroll", team=cold)
    # A closure cannot be re-imported from the stored spec.
    closure = Team("closure", [Agent("solo", fn=lambda ctx: "ANSWER: 3")], store=store)
    lost = await closure.arun("What is 1 + 1?", ground_truth="2")
    with pytest.raises(UserError, match="cannot be re-run: agent solo was a Python function"):
        await aattribute(store, lost.run_id, method="reroll")
    assert all(store.child_runs(x) == [] for x in (rid, ok, imported, r.run_id, lost.run_id))
    assert not any(
        a.method == "reroll"
        for x in (rid, ok, imported, r.run_id, lost.run_id)
        for a in store.attributions(x)
    )


def test_cli_reroll_prints_the_curve_and_bad_input_exits_2(tmp_path: Path) -> None:
    import asyncio

    FAULT["c"] = 0.5
    db = tmp_path / "m.db"
    with TraceStore(db) as store:
        rid = asyncio.run(failed_run(counting_team(store)))
    shown = runner.invoke(app, ["attribute", rid, "--method", "reroll", "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    assert (
        f"run {rid}: c at step 2" in shown.stdout and "point of no return: step 2" in shown.stdout
    )
    assert (
        "S(k)" in shown.stdout and "suggested correction" in shown.stdout and "c: 3" in shown.stdout
    )
    as_json = runner.invoke(
        app, ["attribute", rid, "--method", "reroll", "--db", str(db), "--json"]
    )
    data = json.loads(as_json.stdout)
    assert data["step"] == 2 and data["verified"] is True and data["curve"]
    gone = runner.invoke(app, ["attribute", "NOPE", "--method", "reroll", "--db", str(db)])
    assert gone.exit_code == 2 and "no run 'NOPE'" in gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1 and "Traceback" not in gone.output
    with TraceStore(db) as store:
        plain = Team("plain", [Agent("solo", fn=deterministic)], store=store)
        fixed = plain.run("What is 1 + 1?", ground_truth="2").run_id
    for extra in ([], ["--temperature", "0.7"]):
        bad = runner.invoke(
            app, ["attribute", fixed, "--method", "reroll", "--db", str(db), *extra]
        )
        assert bad.exit_code == 2 and "deterministic" in bad.stderr, bad.output
        assert len(bad.stderr.strip().splitlines()) == 1
    assert "--temperature does not change" in bad.stderr
    with TraceStore(db) as store:
        assert store.child_runs(fixed) == [] and store.attributions(fixed) == []


async def test_stochastic_planted_benchmark_scores_reroll(tmp_path: Path) -> None:
    report = await aevaluate_planted(
        methods=["reroll"], model=None, limit=8, fault_rate=0.5, db=tmp_path / "p.db"
    )
    (score,) = report.attribution
    d = score.as_dict()
    assert report.cases == 8 and set(report.shapes) == {"relay", "review", "chat"}
    assert d["step_accuracy"] == 1.0 and d["replays_median"] <= 40
    # The same cases and seeds give the same faults: the benchmark is reproducible.
    again = await aevaluate_planted(methods=["reroll"], model=None, limit=8, fault_rate=0.5)
    assert again.attribution[0].replays == score.replays
