"""The embedded family of planted faults: model-agent teams with one turn corrupted at a rate."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mascope.agents import samples
from mascope.cli import app
from mascope.diagnosis import aattribute
from mascope.evals._embedded import (
    EMBEDDED_FAULT_KINDS,
    EMBEDDED_SHAPES,
    EmbeddedCase,
    EmbeddedFault,
    FaultyTurn,
    build_embedded_team,
    corrupt,
    make_embedded_cases,
    plant_embedded,
)
from mascope.graphs import Team
from mascope.models import ScriptedModel
from mascope.traces import TraceStore

_QUESTION = re.compile(r"What is (\d+) ([+*]) (\d+)\?")


def _content(message: Any) -> str:
    return str(message["content"] if isinstance(message, dict) else message.content)


def _calculator(request: Any) -> str:
    """A model that does every agent's job right, so the fault-free team always succeeds."""
    prompt = _content(request.messages[-1])
    a, op, b = _QUESTION.search(prompt).groups()  # type: ignore[union-attr]
    result = int(a) + int(b) if op == "+" else int(a) * int(b)
    if "Rubric:" in prompt:
        return json.dumps({"passed": True, "score": 1.0, "feedback": "correct"})
    if request.response_schema is not None:  # the reporter copies the last number it was shown
        return json.dumps({"answer": int(re.findall(r"\d+", prompt)[-1])})
    return f"{a} {op} {b} = {result}\nANSWER: {result}"


def calculator(calls: int = 2000) -> ScriptedModel:
    return ScriptedModel([_calculator] * calls)


def test_cases_cover_every_shape_and_fault_with_exact_answers() -> None:
    cases = make_embedded_cases(n=14, seed=3, fault_rate=0.5)
    assert {c.shape for c in cases} == set(EMBEDDED_SHAPES)
    assert {c.fault.kind for c in cases} == set(EMBEDDED_FAULT_KINDS)
    assert {(c.shape, c.fault.agent) for c in cases} >= {
        ("review", "solver"), ("relay", "solver"), ("relay", "reporter")
    }  # fmt: skip
    for c in cases:
        a, op, b = _QUESTION.search(c.task).groups()  # type: ignore[union-attr]
        assert c.ground_truth == str(int(a) + int(b) if op == "+" else int(a) * int(b))
        assert c.fault.rate == 0.5
    assert cases == make_embedded_cases(n=14, seed=3, fault_rate=0.5)
    # One case per seed (how the benchmark script checkpoints) still takes every combination.
    singles = [make_embedded_cases(n=1, seed=s)[0] for s in range(6)]
    assert {(c.shape, c.fault.kind, c.fault.agent) for c in singles} == {
        (c.shape, c.fault.kind, c.fault.agent) for c in cases
    }


def test_every_case_builds_its_team(store: TraceStore) -> None:
    for c in make_embedded_cases(n=12):
        team, faulty = build_embedded_team(c.shape, fault=c.fault, store=store, model=calculator())
        assert faulty is not None and team.agents[c.fault.agent].fn is faulty


def test_corrupted_output_differs_from_the_real_one() -> None:
    rng = random.Random(0)
    real = "6 * 7 = 42\nANSWER: 42"
    for _ in range(20):
        wrong = corrupt("wrong-number", real, rng)
        assert wrong is not None and wrong != real and "42" not in wrong
        assert wrong.startswith("6 * 7 = ")  # the operands stay as the model wrote them
    assert corrupt("wrong-number", '{"answer": 3}', rng) != '{"answer": 3}'
    assert corrupt("dropped-output", real, rng) == ""
    assert corrupt("wrong-number", "I cannot say", rng) is None  # nothing to change: not fired


@pytest.mark.parametrize(
    ("shape", "kind", "agent"),
    [("review", "wrong-number", "solver"), ("relay", "wrong-number", "solver"),
     ("relay", "dropped-output", "reporter")],
)  # fmt: skip
async def test_fault_at_rate_one_fires_at_the_planted_step(
    store: TraceStore, shape: str, kind: Any, agent: str
) -> None:
    case = EmbeddedCase("c", shape, 6, "*", 7, EmbeddedFault(kind, agent, 1.0))
    got = await plant_embedded(store, case, model=calculator())
    assert got.reference_ok and got.skipped is None and got.attempts == 1
    assert got.run_id is not None and got.step is not None
    run = store.get_run(got.run_id)
    assert run.status == "failed"
    step = store.steps(got.run_id)[got.step]
    # The truth is the faulty agent's turn, and what it recorded is the corrupted output.
    assert (step.agent, step.kind) == (agent, "message")
    (firing,) = [f for f in got.firings if f.agent == agent]
    assert firing.fired and step.content == firing.said != firing.real
    assert "42" in firing.real  # the model's own answer was right


async def test_fault_at_rate_zero_never_fires(store: TraceStore) -> None:
    team, faulty = build_embedded_team(
        "relay", fault=EmbeddedFault("wrong-number", "solver", 0.0), store=store, model=calculator()
    )
    assert faulty is not None
    for a, b in ((3, 4), (12, 9), (7, 8)):
        result = await team.arun(f"What is {a} + {b}?", ground_truth=str(a + b))
        assert result.status == "succeeded"
    assert len(faulty.log) == 3 and not any(f.fired for f in faulty.log)


async def test_faulty_agent_is_the_team_prompt_on_the_team_model(store: TraceStore) -> None:
    model = calculator()
    team, _ = build_embedded_team(
        "review", fault=EmbeddedFault("wrong-number", "solver", 0.0), store=store, model=model
    )
    clean, _ = build_embedded_team("review", fault=None, store=store, model=model)
    await team.arun("What is 2 + 3?", ground_truth="5")
    await clean.arun("What is 2 + 3?", ground_truth="5")
    solver_calls = [c for c in model.calls if "Rubric:" not in _content(c.messages[-1])]
    wrapped, plain = solver_calls
    # The wrapped turn sends exactly what the plain model agent sends.
    assert [_content(m) for m in wrapped.messages] == [_content(m) for m in plain.messages]
    assert (wrapped.temperature, wrapped.max_tokens) == (plain.temperature, plain.max_tokens)


async def test_a_stored_run_rebuilds_with_its_faulty_function(store: TraceStore) -> None:
    case = EmbeddedCase("c", "relay", 5, "+", 4, EmbeddedFault("wrong-number", "solver", 0.5))
    got = None
    for seed in range(20):
        got = await plant_embedded(store, case, model=calculator(), seed=seed)
        if got.skipped is None:
            break
    assert got is not None and got.run_id is not None
    run = store.get_run(got.run_id)
    assert run.spec is not None
    (solver,) = [a for a in run.spec["agents"] if a["name"] == "solver"]
    assert solver["function"] == "mascope.evals._embedded:FAULTS.wrong_number_p0_5"
    rebuilt = Team.from_run(store, run.id)
    fn = rebuilt.agents["solver"].fn
    assert isinstance(fn, FaultyTurn) and (fn.kind, fn.rate) == ("wrong-number", 0.5)
    assert samples(fn)  # re-rolls re-sample it
    assert rebuilt.agents["reporter"].fn is None  # the others stay model agents


async def test_reroll_finds_the_injected_step(store: TraceStore) -> None:
    case = EmbeddedCase("c", "relay", 6, "*", 3, EmbeddedFault("wrong-number", "solver", 0.5))
    got = await plant_embedded(store, case, model=calculator(), seed=1)
    assert got.skipped is None and got.run_id is not None and got.team is not None
    result = await aattribute(store, got.run_id, method="reroll", team=got.team, samples=8)
    assert result.decided and (result.agent, result.step) == ("solver", got.step)


def test_cli_bad_family_and_rate_are_one_line_and_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    for args, says in (
        (["--family", "embeded"], "unknown --family 'embeded' (did you mean 'embedded'?)"),
        (
            ["--family", "embedded", "--fault-rate", "1.5"],
            "--fault-rate must be above 0 and below 1",
        ),
        (["--family", "embedded", "--fault-rate", "0"], "--fault-rate must be above 0 and below 1"),
    ):
        bad = runner.invoke(app, ["eval", "planted", *args, "--keep", str(tmp_path / "k.db")])
        assert bad.exit_code == 2, bad.output
        assert says in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "k.db").exists()


@pytest.mark.slow
async def test_embedded_model_fault_fires_at_the_planted_step(store: TraceStore) -> None:
    """With the real embedded model: a fault at rate 1 on the demo's solver decides the run."""
    case = EmbeddedCase("c", "review", 6, "*", 7, EmbeddedFault("wrong-number", "solver", 1.0))
    got = await plant_embedded(store, case)
    if not got.reference_ok:
        pytest.skip("the embedded model got 6 * 7 wrong without a fault this time")
    assert got.skipped is None and got.run_id is not None and got.step == 0
    assert store.get_run(got.run_id).status == "failed"
