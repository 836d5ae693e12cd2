"""Answer matching, shared by the answer_match verifier and a team's scoring."""

from __future__ import annotations

import pytest

from mascope.agents import AnswerMatch, VerifyContext, match_answer

ERA = "The Eiffel Tower is about 330 m tall. It was finished in 1889."


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("The capital of France is Paris.", "Paris"),
        (ERA, "330"),
        ("There are 8.0 muffins left.", "8"),
        ("It cost $1,000 in total", "1000"),
        ("PARIS", "paris"),
        ("Work: 24 - 9 - 7 = 8\nANSWER: 8", "8"),
        ("The answer is New   York City!", "new york"),
        ("final answer: -3", "-3"),
        ("24-9=15", "9"),  # a dash between numbers is not a minus sign
    ],
)
def test_contains_finds_the_ground_truth_as_whole_words_or_numbers(
    answer: str, expected: str
) -> None:
    assert match_answer(answer, expected).matched


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("It is 180 cm.", "18"),
        ("A Parisian cafe", "Paris"),
        ("I worked out 330 first.\nANSWER: 1889", "330"),  # the marked answer decides
        ("minus: -5", "5"),
        ("York", "New York"),
    ],
)
def test_contains_rejects_partial_words_numbers_and_unmarked_parts(
    answer: str, expected: str
) -> None:
    assert not match_answer(answer, expected).matched


def test_the_matched_span_points_into_the_answer() -> None:
    result = match_answer(ERA, "330")
    assert result.span is not None and ERA[result.span[0] : result.span[1]] == "330"
    assert result.found == "330" and "330" in result.describe()
    marked = "Working: 5 + 3\nANSWER: 8"
    span = match_answer(marked, "8").span
    assert span is not None and marked[span[0] : span[1]] == "8"


def test_other_matchers() -> None:
    assert match_answer("ANSWER: 8.0004", "8", mode="numeric", tolerance=0.001).matched
    assert not match_answer("ANSWER: 9", "8", mode="numeric").matched
    assert match_answer("Paris", "Paris", mode="exact", extract="all").matched
    assert not match_answer("Paris.", "Paris", mode="exact", extract="all").matched
    assert match_answer("paris.", "Paris", mode="normalised").matched
    assert match_answer("order #A-123 shipped", r"A-\d+", mode="regex").matched


def test_answer_match_verifier_uses_the_same_matchers() -> None:
    verdict = AnswerMatch(mode="contains").verify(ERA, VerifyContext(task="t", ground_truth="330"))
    assert verdict.passed
    verdict = AnswerMatch(mode="contains").verify(
        "It is 180 cm.", VerifyContext(task="t", ground_truth="18")
    )
    assert not verdict.passed
