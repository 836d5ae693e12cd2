"""Attribution methods with the scripted model, and counterfactual replay on a function-agent team."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mascope import Agent, Team
from mascope.agents import TurnContext, VerifyContext
from mascope.diagnosis import aattribute
from mascope.errors import StructuredOutputError, UserError
from mascope.models import ScriptedModel
from mascope.traces import TraceStore


def failed_run(store: TraceStore) -> str:
    rid = store.start_run(team="t", task="What is 2 + 3?", ground_truth="5")
    for agent, content in [
        ("planner", "Add the numbers."),
        ("solver", "2 + 3 = 6"),
        ("checker", "Looks right."),
        ("solver", "ANSWER: 6"),
    ]:
        store.append_step(rid, agent=agent, content=content)
    store.finish_run(rid, status="failed", final_answer="ANSWER: 6", termination_reason="end")
    return rid


async def test_all_at_once(store: TraceStore) -> None:
    rid = failed_run(store)
    model = ScriptedModel([json.dumps({"agent": "solver", "step": 1, "reason": "2 + 3 is 5"})])
    result = await aattribute(store, rid, method="all-at-once", model=model)
    assert (result.agent, result.step, result.reason) == ("solver", 1, "2 + 3 is 5")
    (stored,) = store.attributions(rid)
    assert (stored.method, stored.agent, stored.step_index, stored.annotator) == (
        "all-at-once",
        "solver",
        1,
        "llm:scripted",
    )
    prompt = model.calls[0].messages[-1].content or ""
    assert "Step 1 - solver (message): 2 + 3 = 6" in prompt and "Correct answer: 5" in prompt


async def test_without_ground_truth(store: TraceStore) -> None:
    rid = failed_run(store)
    model = ScriptedModel([json.dumps({"agent": "solver", "step": 1, "reason": "r"})])
    result = await aattribute(
        store, rid, method="all-at-once", model=model, with_ground_truth=False
    )
    assert "Correct answer" not in (model.calls[0].messages[-1].content or "")
    assert (
        store.attributions(rid)[0].with_ground_truth is False and result.with_ground_truth is False
    )


async def test_step_by_step_stops_at_the_first_yes(store: TraceStore) -> None:
    rid = failed_run(store)
    model = ScriptedModel(
        [
            json.dumps({"is_decisive_mistake": False, "reason": "fine"}),
            json.dumps({"is_decisive_mistake": True, "reason": "wrong sum"}),
        ]
    )
    result = await aattribute(store, rid, method="step-by-step", model=model)
    assert (result.agent, result.step, result.model_calls) == ("solver", 1, 2)
    assert "Step 1 - " in (model.calls[1].messages[-1].content or "") and "Step 2 - " not in (
        model.calls[1].messages[-1].content or ""
    )


async def test_binary_search_halves(store: TraceStore) -> None:
    rid = failed_run(store)  # steps 0..3: [0,1] vs [2,3], then [0] vs [1]
    model = ScriptedModel(
        [
            json.dumps({"half": "first", "reason": "early"}),
            json.dumps({"half": "second", "reason": "the sum"}),
        ]
    )
    result = await aattribute(store, rid, method="binary-search", model=model)
    assert (result.step, result.agent, result.model_calls) == (1, "solver", 2)


async def test_a2p_gives_cause_fix_and_prediction(store: TraceStore) -> None:
    rid = failed_run(store)
    answer = {
        "abduction": "the solver mis-added",
        "agent": "Solver",
        "step": 1,
        "action": "2 + 3 = 5",
        "would_succeed": True,
        "prediction": "the answer becomes 5",
    }
    result = await aattribute(store, rid, method="a2p", model=ScriptedModel([json.dumps(answer)]))
    assert (result.agent, result.step, result.intervention, result.reason) == (
        "solver",
        1,
        "2 + 3 = 5",
        "the solver mis-added",
    )
    assert store.attributions(rid)[0].intervention == "2 + 3 = 5"


async def test_a_step_that_does_not_exist_is_re_asked_then_reported(store: TraceStore) -> None:
    rid = failed_run(store)
    model = ScriptedModel(
        [
            json.dumps({"agent": "solver", "step": 57, "reason": "r"}),
            json.dumps({"agent": "solver", "step": 1, "reason": "r"}),
        ]
    )
    result = await aattribute(store, rid, method="all-at-once", model=model)
    assert result.step == 1
    assert "step 57 does not exist; the run has steps 0 to 3" in (
        model.calls[1].messages[-1].content or ""
    )
    bad = ScriptedModel([json.dumps({"agent": "a", "step": 99, "reason": "r"})] * 2)
    with pytest.raises(StructuredOutputError, match="step 99 does not exist"):
        await aattribute(store, rid, method="all-at-once", model=bad)
    assert len(store.attributions(rid)) == 1  # nothing half-written


async def test_bad_requests(store: TraceStore) -> None:
    ok = store.start_run(task="t")
    store.append_step(ok, agent="a", content="x")
    store.finish_run(ok, status="succeeded")
    with pytest.raises(UserError, match="succeeded; there is no failure to attribute"):
        await aattribute(store, ok, model=ScriptedModel([]))
    with pytest.raises(Exception, match="no run"):
        await aattribute(store, "NOPE", model=ScriptedModel([]))


async def test_counterfactual_on_an_imported_run_falls_back_to_a2p(
    store: TraceStore, datasets: Path
) -> None:
    from mascope.traces import import_paths

    import_paths(store, "whowhen", [datasets / "who_and_when" / "Hand-Crafted" / "1.json"])
    run = store.list_runs(source="whowhen")[0]
    answer = {
        "abduction": "c",
        "agent": "WebSurfer",
        "step": 1,
        "action": "fix",
        "would_succeed": False,
        "prediction": "p",
    }
    result = await aattribute(
        store, run.id, method="counterfactual", model=ScriptedModel([json.dumps(answer)])
    )
    assert result.method == "a2p" and any(
        "cannot be re-run; falling back to a2p" in n for n in result.notes
    )


# -- counterfactual replay ---------------------------------------------------------


def reader(ctx: TurnContext) -> str:
    return "numbers: 2 and 4"  # the decisive mistake: the task says 3


def solver(ctx: TurnContext) -> str:
    nums = [
        int(t) for t in (ctx.outputs.get("reader", "")).replace(",", " ").split() if t.isdigit()
    ]
    return f"ANSWER: {sum(nums)}"


def reporter(ctx: TurnContext) -> str:
    return ctx.outputs.get("solver", "")


def is_five(candidate: str, ctx: VerifyContext) -> bool:
    return candidate.strip() == "ANSWER: 5"


async def test_counterfactual_finds_the_earliest_decisive_step(tmp_path: Path) -> None:
    db = tmp_path / "cf.db"
    team = Team(
        "sum", [Agent("reader", fn=reader), Agent("solver", fn=solver), Agent("reporter", fn=reporter)],
        stages=["reader", "solver", {"agent": "reporter", "verifier": "five", "max_rounds": 1}], verifiers={"five": is_five}, store=db,
    )  # fmt: skip
    parent = await team.arun("Add 2 and 3.")
    assert parent.status == "failed"
    store = TraceStore(db)
    steps = store.steps(parent.run_id)
    assert [s.agent for s in steps] == ["reader", "solver", "reporter", "five"]
    # The model proposes the reporter's step (a later fix that also works) and lists candidates
    # including the reader's step 0, whose correction is the decisive one.
    a2p = {
        "abduction": "the reporter passed on a wrong sum",
        "agent": "reporter",
        "step": 2,
        "action": "ANSWER: 5",
        "would_succeed": True,
        "prediction": "p",
    }
    candidates = {
        "candidates": [
            {"step": 2, "correction": "ANSWER: 5"},
            {"step": 1, "correction": "ANSWER: 9"},
            {"step": 0, "correction": "numbers: 2 and 3"},
        ]
    }
    model = ScriptedModel([json.dumps(a2p), json.dumps(candidates)])
    result = await aattribute(store, parent.run_id, method="counterfactual", model=model, team=team)
    assert (result.step, result.agent, result.verified) == (0, "reader", True)
    assert result.replays == [
        {"step": 0, "run_id": result.replay_run_id, "status": "succeeded"}
    ]  # stopped at the first success
    child = store.get_run(result.replay_run_id or "")
    assert (
        child.parent_run_id == parent.run_id
        and child.fork_step == 0
        and child.status == "succeeded"
    )
    (stored,) = store.attributions(parent.run_id)
    assert stored.verified is True and stored.replay_run_id == child.id


async def test_counterfactual_reports_unverified_when_no_replay_helps(tmp_path: Path) -> None:
    db = tmp_path / "cf2.db"
    team = Team(
        "sum",
        [Agent("reader", fn=reader), Agent("solver", fn=solver)],
        stages=["reader", {"agent": "solver", "verifier": "five", "max_rounds": 1}],
        verifiers={"five": is_five},
        store=db,
    )
    parent = await team.arun("Add 2 and 3.")
    a2p = {
        "abduction": "c",
        "agent": "solver",
        "step": 1,
        "action": "ANSWER: 7",
        "would_succeed": True,
        "prediction": "p",
    }
    model = ScriptedModel(
        [
            json.dumps(a2p),
            json.dumps({"candidates": [{"step": 0, "correction": "numbers: 1 and 1"}]}),
        ]
    )
    result = await aattribute(
        TraceStore(db),
        parent.run_id,
        method="counterfactual",
        model=model,
        team=team,
        max_replays=3,
    )
    assert result.verified is False and [r["step"] for r in result.replays] == [0, 1]
    assert (result.step, result.agent) == (1, "solver")  # the a2p answer, unverified


async def test_counterfactual_replays_a2p_when_the_candidate_list_is_unusable(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cf3.db"
    team = Team(
        "sum",
        [Agent("reader", fn=reader), Agent("solver", fn=solver)],
        stages=["reader", {"agent": "solver", "verifier": "five", "max_rounds": 1}],
        verifiers={"five": is_five},
        store=db,
    )
    parent = await team.arun("Add 2 and 3.")
    a2p = {
        "abduction": "misread", "agent": "reader", "step": 0,
        "action": "numbers: 2 and 3", "would_succeed": True, "prediction": "p",
    }  # fmt: skip
    # A weak model's candidate list cut off twice (the answer and its repair).
    model = ScriptedModel([json.dumps(a2p), '{"candidates": [{"step": 0', '{"candidates": ['])
    result = await aattribute(
        TraceStore(db), parent.run_id, method="counterfactual", model=model, team=team
    )
    assert (result.step, result.verified) == (0, True)
    assert any(n.startswith("no further candidates") for n in result.notes)


def test_attribute_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mascope.cli import app

    runner = CliRunner()
    db = tmp_path / "cli.db"
    with TraceStore(db) as store:
        rid = failed_run(store)
        ok = store.start_run(task="fine")
        store.append_step(ok, agent="a", content="x")
        store.finish_run(ok, status="succeeded")
    script = tmp_path / "s.json"
    script.write_text(
        json.dumps([json.dumps({"agent": "solver", "step": 1, "reason": "mis-added"})])
    )
    result = runner.invoke(
        app,
        ["attribute", rid, "--method", "all-at-once", "-m", f"scripted:{script}", "--db", str(db)],
    )
    assert result.exit_code == 0, result.output
    assert (
        f"run {rid}: solver at step 1 (all-at-once)" in result.stdout
        and "why: mis-added" in result.stdout
    )
    done = runner.invoke(app, ["attribute", ok, "-m", f"scripted:{script}", "--db", str(db)])
    assert done.exit_code == 2 and "succeeded; there is no failure to attribute" in done.stderr
    unknown = runner.invoke(
        app, ["attribute", rid, "--method", "guess", "-m", f"scripted:{script}", "--db", str(db)]
    )
    assert unknown.exit_code == 2 and "unknown attribution method 'guess'" in unknown.stderr


def test_attribution_batch_is_a_resumable_job(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mascope.cli import app

    runner = CliRunner()
    db = tmp_path / "batch.db"
    with TraceStore(db) as store:
        ids = [failed_run(store) for _ in range(3)]
    script = tmp_path / "s.json"
    script.write_text(json.dumps([json.dumps({"agent": "solver", "step": 1, "reason": "r"})] * 3))
    first = runner.invoke(
        app,
        [
            "attribute",
            "--all",
            "--method",
            "all-at-once",
            "-m",
            f"scripted:{script}",
            "--db",
            str(db),
            "--json",
        ],
    )
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert (data["attributed"], data["skipped"], data["blamed_agents"]) == (3, 0, {"solver": 3})
    again = json.loads(
        runner.invoke(
            app,
            [
                "attribute",
                "--all",
                "--method",
                "all-at-once",
                "-m",
                f"scripted:{script}",
                "--db",
                str(db),
                "--json",
            ],
        ).stdout
    )
    assert (again["attributed"], again["skipped"]) == (0, 3)  # nothing asked of the model twice
    with TraceStore(db) as store:
        for rid in ids:
            (row,) = store.attributions(rid)
            assert row.method == "all-at-once" and row.job_id == data["job"]


async def test_a_trace_too_long_for_the_model_is_shown_shorter_not_cut(store: TraceStore) -> None:
    from mascope.errors import ContextLengthError

    rid = store.start_run(team="t", task="t")
    for i in range(3):
        store.append_step(rid, agent="a", content=f"step {i} " + "y" * 3000)
    store.finish_run(rid, status="failed")
    model = ScriptedModel(
        [ContextLengthError("too long"), json.dumps({"agent": "a", "step": 2, "reason": "r"})]
    )
    result = await aattribute(store, rid, method="all-at-once", model=model)
    assert result.step == 2 and any("shortened" in n for n in result.notes)
    second = model.calls[1].messages[-1].content or ""
    assert (
        second.count("more characters not shown") == 3 and "Step 2 - a (message): step 2" in second
    )


async def test_counterfactual_with_given_corrections_skips_ones_that_change_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cf3.db"
    team = Team(
        "sum", [Agent("reader", fn=reader), Agent("solver", fn=solver), Agent("reporter", fn=reporter)],
        stages=["reader", "solver", {"agent": "reporter", "verifier": "five", "max_rounds": 1}],
        verifiers={"five": is_five}, store=db,
    )  # fmt: skip
    parent = await team.arun("Add 2 and 3.")
    store = TraceStore(db)

    async def propose(run: object, steps: object) -> list[tuple[int, str]]:
        # Step 0 "corrected" to what it already said is no intervention; step 1 is a real one.
        return [(0, "numbers: 2 and 4"), (1, "ANSWER: 5"), (2, "ANSWER: 5")]

    result = await aattribute(
        store, parent.run_id, method="counterfactual", model=ScriptedModel([]), team=team,
        corrections=propose,
    )  # fmt: skip
    assert (result.step, result.agent, result.verified) == (1, "solver", True)
    assert [r["step"] for r in result.replays] == [1]
    assert store.attributions(parent.run_id)[0].annotator == "replay:given-corrections"


async def test_a_verdict_corrected_in_prose_is_replayed_as_the_opposite_verdict(
    tmp_path: Path,
) -> None:
    # Models describe the right verdict in words; that used to end the attribution with
    # "a replacement verdict must be JSON ..." instead of a replay.
    db = tmp_path / "cf4.db"
    team = Team(
        "sum", [Agent("reader", fn=reader), Agent("solver", fn=solver)],
        stages=["reader", {"agent": "solver", "verifier": "lenient", "max_rounds": 2}],
        verifiers={"lenient": lambda candidate: True}, store=db,
    )  # fmt: skip
    parent = await team.arun("Add 2 and 3.", ground_truth="5")
    assert parent.status == "failed"
    store = TraceStore(db)
    verdict = next(s for s in store.steps(parent.run_id) if s.kind == "verdict")

    async def propose(run: object, steps: object) -> list[tuple[int, str]]:
        return [(verdict.index, "The checker should have rejected 6, since 2 + 3 is 5.")]

    result = await aattribute(
        store, parent.run_id, method="counterfactual", model=ScriptedModel([]), team=team,
        corrections=propose,
    )  # fmt: skip
    assert [r["step"] for r in result.replays] == [verdict.index]
    replay = store.steps(result.replays[0]["run_id"])
    forked = next(s for s in replay if s.index == verdict.index)
    assert forked.data["passed"] is False and "should have rejected 6" in forked.content
