"""Rule detectors on constructed traces: each fires on its failure and stays quiet otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mascope.diagnosis import apply_rules, detect
from mascope.traces import TraceStore


def make(
    store: TraceStore,
    steps: Sequence[tuple[str, str, str] | tuple[str, str, str, dict[str, Any]]],
    *,
    status: str = "failed",
    reason: str = "end",
    metadata: dict[str, Any] | None = None,
    ground_truth: str | None = None,
) -> str:
    rid = store.start_run(team="t", task="task", ground_truth=ground_truth)
    for step in steps:
        agent, kind, content, *rest = step
        store.append_step(
            rid, agent=agent, kind=kind, content=content, data=rest[0] if rest else None
        )
    store.finish_run(rid, status=status, termination_reason=reason, metadata=metadata)
    return rid


def modes(store: TraceStore, rid: str) -> dict[str, list[int]]:
    return {f.mode: f.evidence_steps for f in detect(store.get_run(rid), store.steps(rid))}


def test_step_repetition(store: TraceStore) -> None:
    rid = make(store, [("a", "message", "Let me search for the population of Paris."), ("b", "message", "ok"),
                       ("a", "message", "Let me search for the population of Paris!"), ("a", "message", "Something new entirely.")])  # fmt: skip
    assert modes(store, rid)["FM-1.3"] == [0, 2]
    other = make(
        store,
        [
            ("a", "message", "Let me search for the population of Paris."),
            ("a", "message", "The population is 2.1 million, per INSEE 2023."),
        ],
    )
    assert "FM-1.3" not in modes(store, other)


def test_step_limit(store: TraceStore) -> None:
    assert "FM-1.5" in modes(store, make(store, [("a", "message", "x")], reason="max_rounds"))
    assert "FM-1.5" not in modes(store, make(store, [("a", "message", "x")], reason="stop_phrase"))


def test_no_verification(store: TraceStore) -> None:
    assert modes(store, make(store, [("a", "message", "42")]))["FM-3.2"] == [0]
    checked = make(store, [("a", "message", "42"), ("v", "verdict", "PASSED", {"passed": True})])
    assert "FM-3.2" not in modes(store, checked)
    unchecked_tail = make(
        store,
        [
            ("a", "message", "42"),
            ("v", "verdict", "PASSED", {"passed": True}),
            ("w", "message", "final: 43"),
        ],
    )
    assert modes(store, unchecked_tail)["FM-3.2"] == [2]


def test_premature_termination(store: TraceStore) -> None:
    rid = make(
        store,
        [
            ("a", "message", "42"),
            ("v", "verdict", "FAILED", {"passed": False}),
            ("a", "message", "FINAL ANSWER: 42"),
        ],
        reason="stop_phrase",
    )
    assert modes(store, rid)["FM-3.1"] == [1, 2]
    fine = make(
        store,
        [("a", "message", "42"), ("v", "verdict", "PASSED", {"passed": True})],
        reason="verifier_passed",
    )
    assert "FM-3.1" not in modes(store, fine)


def test_context_truncation(store: TraceStore) -> None:
    rid = make(
        store,
        [
            ("a", "message", "x"),
            ("a", "event", "context truncated", {"event": "context_truncation", "dropped": 3}),
            ("a", "message", "y", {"context_dropped": 3}),
        ],
    )
    assert modes(store, rid)["FM-1.4"] == [1, 2]
    assert "FM-1.4" not in modes(
        store, make(store, [("a", "event", "resumed", {"event": "resume"})])
    )


def test_out_of_role_tool(store: TraceStore) -> None:
    rid = make(
        store,
        [("a", "tool_call", "rm(/)"), ("a", "refusal", "refused: rm is not one of a's tools")],
    )
    assert modes(store, rid)["FM-1.2"] == [0, 1]
    assert "FM-1.2" not in modes(
        store, make(store, [("a", "tool_call", "add(1,2)"), ("a", "tool_result", "3")])
    )


def test_verifier_passed_wrong_answer(store: TraceStore) -> None:
    rid = make(
        store,
        [("a", "message", "10"), ("v", "verdict", "PASSED", {"passed": True})],
        reason="verifier_passed",
        metadata={"answer_correct": False},
    )
    assert modes(store, rid)["FM-3.3"] == [1]
    right = make(
        store,
        [("a", "message", "8"), ("v", "verdict", "PASSED", {"passed": True})],
        reason="verifier_passed",
        metadata={"answer_correct": True},
    )
    assert "FM-3.3" not in modes(store, right)


def test_a_checked_right_answer_broken_later_is_not_a_wrong_verification(
    store: TraceStore,
) -> None:
    steps: list[Any] = [
        ("solver", "message", "sum = 8"),
        ("check", "verdict", "PASSED", {"passed": True}),
        ("reporter", "message", "ANSWER: unknown"),
    ]
    later = make(store, steps, metadata={"answer_correct": False}, ground_truth="8")
    assert "FM-3.3" not in modes(store, later)
    steps[0] = ("solver", "message", "sum = 9")  # the check passed a wrong sum
    wrong = make(store, steps, metadata={"answer_correct": False}, ground_truth="8")
    assert modes(store, wrong)["FM-3.3"] == [1]


def test_ignored_feedback(store: TraceStore) -> None:
    rid = make(
        store,
        [
            ("a", "message", "ANSWER: 6"),
            ("v", "verdict", "FAILED: recount", {"passed": False}),
            ("a", "message", "ANSWER: 6"),
        ],
    )
    assert modes(store, rid)["FM-2.5"] == [1, 2]
    fixed = make(
        store,
        [
            ("a", "message", "ANSWER: 6"),
            ("v", "verdict", "FAILED: recount", {"passed": False}),
            ("a", "message", "Recounted: ANSWER: 5"),
        ],
    )
    assert "FM-2.5" not in modes(store, fixed)


def test_apply_rules_replaces_its_own_labels(store: TraceStore) -> None:
    rid = make(store, [("a", "message", "42")])
    store.add_annotations(rid, [{"mode": "FM-2.3", "present": True, "annotator": "human:x"}])
    apply_rules(store, rid)
    apply_rules(store, rid)
    labels = store.annotations(rid)
    assert sorted((a.annotator, a.mode) for a in labels) == [
        ("human:x", "FM-2.3"),
        ("rule:no-verification", "FM-3.2"),
    ]


# -- detectors on runs of real (function-agent) teams ------------------------------------


def team_run(store: TraceStore, team: Any, task: str = "What is 2 + 3?") -> str:
    from mascope import Team

    assert isinstance(team, Team)
    return team.run(task, ground_truth="5").run_id


def found(store: TraceStore, rid: str) -> dict[str, list[int]]:
    return {f.detector: f.evidence_steps for f in detect(store.get_run(rid), store.steps(rid))}


def fails_once() -> Any:
    """A verifier that rejects the first thing it checks and passes the rest."""
    seen: list[str] = []

    def check(candidate: str) -> tuple[bool, str]:
        seen.append(candidate)
        return (len(seen) > 1, "" if len(seen) > 1 else "the sum is off; recount")

    return check


def test_the_agent_sent_back_repeating_its_turn_ignores_feedback(store: TraceStore) -> None:
    from mascope import Agent, Team

    stages = ["coder", {"agent": "tester", "verifier": "check", "retry_from": "coder"}]
    stubborn = Team(
        "t", [Agent("coder", fn=lambda ctx: "def add(a, b):\n    return a - b"),
              Agent("tester", fn=lambda ctx: "assert add(2, 3) == 5")],
        stages=stages, verifiers={"check": fails_once()}, store=store.path,
    )  # fmt: skip
    rid = team_run(store, stubborn)
    kinds = [(s.agent, s.kind) for s in store.steps(rid)]
    assert kinds[:4] == [("coder", "message"), ("tester", "message"), ("check", "verdict"),
                         ("coder", "message")]  # fmt: skip
    assert found(store, rid)["ignored-feedback"] == [2, 3]

    # The coder fixes its code; the tester's unchanged tests are not ignored feedback.
    fixing = Team(
        "t", [Agent("coder", fn=lambda ctx: "def add(a, b):\n    return a + b" if ctx.feedback
                    else "def add(a, b):\n    return a - b"),
              Agent("tester", fn=lambda ctx: "assert add(2, 3) == 5")],
        stages=stages, verifiers={"check": fails_once()}, store=store.path,
    )  # fmt: skip
    rid = team_run(store, fixing)
    assert "ignored-feedback" not in found(store, rid)


def test_a_pipeline_that_claims_its_answer_before_its_verifier_ran(store: TraceStore) -> None:
    from mascope import Agent, Team
    from mascope.models import ScriptedModel, ScriptedReply, ToolCall

    hasty = ScriptedModel(
        [
            ScriptedReply(
                tool_calls=[ToolCall(id="1", name="final_answer", arguments={"answer": "5"})]
            )
        ]
    )
    stages = ["solver", {"agent": "reviewer", "verifier": "check"}]
    early = Team(
        "t", [Agent("solver", model=hasty), Agent("reviewer", fn=lambda ctx: "ANSWER: 5")],
        stages=stages, verifiers={"check": lambda c: (True, "")},
        termination={"final_answer_tool": True}, store=store.path,
    )  # fmt: skip
    rid = team_run(store, early)
    assert store.get_run(rid).termination_reason == "final_answer"
    (finding,) = [f for f in detect(store.get_run(rid), store.steps(rid)) if f.mode == "FM-3.1"]
    assert "'reviewer'" in finding.rationale and "'check'" in finding.rationale
    assert finding.evidence_steps == [store.steps(rid)[-1].index]

    whole = Team(
        "t", [Agent("solver", fn=lambda ctx: "2 + 3 = 5"), Agent("reviewer", fn=lambda ctx: "ANSWER: 5")],
        stages=stages, verifiers={"check": lambda c: (True, "")}, store=store.path,
    )  # fmt: skip
    rid = team_run(store, whole)
    assert store.get_run(rid).termination_reason == "verifier_passed"
    assert "FM-3.1" not in modes(store, rid)


def test_an_agent_that_sends_the_task_again_mid_run_restarts_the_conversation(
    store: TraceStore,
) -> None:
    from mascope import Agent, Team

    task = "How many apples are 17 apples and 25 apples together?"
    said = {
        "planner": "Plan: add the two counts, then check the sum.",
        "solver": "17 + 25 = 42 apples.",
        "checker": "Checked: 42 is right.",
    }
    agents = [Agent(n, fn=lambda ctx: said[ctx.agent]) for n in said]
    restarting = Team(
        "t", [*agents, Agent("closer", fn=lambda ctx: ctx.task)],
        stages=[*said, "closer"], store=store.path,
    )  # fmt: skip
    rid = team_run(store, restarting, task)
    assert found(store, rid)["conversation-reset"] == [0, 3]

    quoting = Team(
        "t", [Agent("opener", fn=lambda ctx: ctx.task), *agents,
              Agent("closer", fn=lambda ctx: f"You asked: {ctx.task} Together that is 42 apples, "
                                             "as the solver found and the checker confirmed.")],
        stages=["opener", *said, "closer"], store=store.path,
    )  # fmt: skip
    rid = team_run(store, quoting, task)
    assert "FM-2.1" not in modes(store, rid)


def test_an_agent_repeating_its_own_opening_line_is_repetition_not_a_restart(
    store: TraceStore,
) -> None:
    from mascope import Agent, Team

    chat = Team(
        "chat",
        [Agent("a", fn=lambda c: "We should look at the budget first."),
         Agent("b", fn=lambda c: f"Agreed, item {len(c.transcript)} on the budget.")],
        topology="group_chat", termination={"max_rounds": 4}, store=store.path,
    )  # fmt: skip
    rid = team_run(store, chat, "Plan the quarter for the whole team.")
    assert "FM-1.3" in modes(store, rid) and "FM-2.1" not in modes(store, rid)


def test_a_passed_answer_is_judged_by_the_teams_own_scoring(store: TraceStore) -> None:
    """A team scored on the last number: a checked message that mentions the truth on the
    way to a wrong final number was a wrong answer, and passing it is FM-3.3."""
    from mascope import Agent, Team

    def solver(ctx: Any) -> str:
        return "23 + 14 = 37, so the answer is 36"

    def passes(candidate: str, ctx: Any) -> bool:
        return True

    for scoring, expected in (({"match": "numeric", "extract": "last_number"}, [1]), (None, None)):
        team = Team(
            "sum", [Agent("solver", fn=solver)], store=store,
            verifiers={"check": passes}, stages=[{"agent": "solver", "verifier": "check"}],
            scoring=scoring,
        )  # fmt: skip
        rid = team.run("What is 23 + 14?", ground_truth="37").run_id
        found = modes(store, rid)
        # With the default scoring ("37" appears) the run succeeds: nothing to find.
        assert found.get("FM-3.3") == expected, (scoring, store.get_run(rid).status)
