"""The planted-failure benchmark: its cases are real failures with a known decisive step."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mascope.cli import app
from mascope.evals._eval_planted import aevaluate_planted, plant, reference_corrections
from mascope.evals._planted import FAULT_KINDS, SHAPES, build_team, make_cases, stratified
from mascope.models import ScriptedModel
from mascope.traces import TraceStore


def test_cases_cover_every_shape_and_fault() -> None:
    cases = make_cases()
    assert len(cases) >= 100
    assert {c.shape for c in cases} == set(SHAPES)
    assert {c.fault.kind for c in cases} == set(FAULT_KINDS)
    assert make_cases() == cases  # the same benchmark every time
    assert {c.shape for c in stratified(cases, 3)} == set(SHAPES)
    picked = stratified(cases, 18)
    assert len(picked) == 18 and {c.shape for c in picked} == set(SHAPES)
    assert {c.fault.kind for c in picked} == set(FAULT_KINDS)


async def test_the_planted_step_is_the_earliest_decisive_one(store: TraceStore) -> None:
    """Correcting the planted step (with what the working team said there) makes the
    run succeed; correcting any earlier step does not change what it said."""
    for case in stratified(make_cases(), 18):
        planted = await plant(store, case)
        assert planted is not None, f"{case.id}: the fault did not make the run fail"
        steps = store.steps(planted.run_id)
        assert steps[planted.step].agent == case.fault.agent
        propose = reference_corrections(store.steps(planted.reference_id))
        corrections = dict(await propose(store.get_run(planted.run_id), steps))
        earlier = [i for i in corrections if i < planted.step]
        assert all(corrections[i] == steps[i].content for i in earlier), case.id
        assert corrections[planted.step] != steps[planted.step].content, case.id
        team = build_team(case.shape, n_numbers=len(case.numbers), fault=case.fault, store=store)
        fixed = await team.afork(
            planted.run_id, step=planted.step, content=corrections[planted.step]
        )
        assert fixed.status == "succeeded", case.id


async def test_counterfactual_with_reference_corrections_finds_the_planted_step() -> None:
    result = await aevaluate_planted(
        methods=["counterfactual+reference", "rules"], model=None, limit=24
    )
    assert result.cases == 24 and not result.not_decisive
    (cf,) = result.attribution
    assert cf.step / cf.n >= 0.95 and cf.verified == cf.n
    assert max(cf.replays) <= 5
    (rules,) = result.labelling
    d = rules.as_dict()["found_by_fault"]
    # Repetition, refusals and unverified answers leave traces a rule can see.
    assert d["out-of-role"] == d["repeated-step"] == d["skipped-verification"] == 1.0


async def test_llm_methods_are_scored_against_the_planted_truth() -> None:
    (case,) = stratified(make_cases(), 1)
    assert case.shape == "relay" and case.fault.agent == "reader"
    right = json.dumps({"agent": "reader", "step": 0, "reason": "misread a number"})
    wrong = json.dumps({"agent": "reporter", "step": 5, "reason": "r"})
    for answer, hits in ((right, 1), (wrong, 0)):
        result = await aevaluate_planted(
            methods=["all-at-once"], model=ScriptedModel([answer]), limit=1
        )
        (score,) = result.attribution
        assert (score.n, score.step, score.agent) == (1, hits, hits)


def test_eval_planted_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app, ["eval", "planted", "--methods", "counterfactual+reference", "--limit", "6", "--json"]
    )
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["cases"] == 6 and data["attribution"][0]["step_accuracy"] == 1.0
    table = runner.invoke(app, ["eval", "planted", "--methods", "rules", "--limit", "6"])
    assert table.exit_code == 0 and "mode found" in table.stdout
    bad = runner.invoke(app, ["eval", "planted", "--methods", "counterfactual,a2q"])
    assert bad.exit_code == 2
    assert "unknown method 'a2q'" in bad.stderr and "did you mean 'a2p'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
