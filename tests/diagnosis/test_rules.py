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
