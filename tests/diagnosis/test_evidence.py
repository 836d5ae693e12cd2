"""The evidence check: a mode is present only when its cited steps and quotes are really there."""

from __future__ import annotations

from mascope.diagnosis._evidence import agreement, check_evidence, quotes_in
from mascope.traces import Step, TraceStore


def steps(store: TraceStore) -> list[Step]:
    rid = store.start_run(team="t", task="What is 17 + 25?", ground_truth="42")
    store.append_step(rid, agent="solver", content="17 + 25 = 32")
    store.append_step(rid, agent="checker", kind="verdict", content="PASSED: the sum is right")
    store.finish_run(rid, status="failed")
    return store.steps(rid)


def test_a_quote_found_in_the_cited_step_checks_out(store: TraceStore) -> None:
    check = check_evidence(
        True, [1], 'The checker wrote "PASSED:  the SUM is right" for 32.', steps(store)
    )
    assert (check.status, check.steps) == ("present", [1])


def test_a_quote_not_in_the_cited_step_is_uncertain(store: TraceStore) -> None:
    run = steps(store)
    # The quote is real, but from step 0, not the cited step 1.
    check = check_evidence(True, [1], 'It said "17 + 25 = 32" and moved on.', run)
    assert check.status == "uncertain" and check.missing_quotes == ["17 + 25 = 32"]
    assert "is not in step 1" in check.reason
    invented = check_evidence(True, [0], "", run, quotes=["I have verified every number"])
    assert invented.status == "uncertain"


def test_steps_the_run_does_not_have_are_uncertain_and_absent_stays_absent(
    store: TraceStore,
) -> None:
    run = steps(store)
    assert check_evidence(True, [7, 9], "the verifier was skipped", run).status == "uncertain"
    assert check_evidence(True, [], "no evidence", run).status == "uncertain"
    assert check_evidence(False, [7], "", run).status == "absent"
    # Cited steps that exist and no quotes: present.
    assert check_evidence(True, [0, 7], "the sum is wrong", run).steps == [0]


def test_short_quoted_words_are_not_checked_as_quotations() -> None:
    assert quotes_in('answered "yes" then "the total is 32 not 42"') == ["the total is 32 not 42"]


def test_samples_below_the_agreement_threshold_are_uncertain() -> None:
    assert agreement(["present"] * 3) == "present"
    assert agreement(["present", "present", "absent"]) == "uncertain"
    assert agreement(["absent", "absent", "absent", "present"], threshold=0.7) == "absent"
    assert agreement([]) == "uncertain"
