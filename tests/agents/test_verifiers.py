"""Verifiers on their own."""

from __future__ import annotations

import pytest

from mascope.agents import (
    AnswerMatch,
    CodeTests,
    Ensemble,
    JsonSchemaCheck,
    Rubric,
    VerifyContext,
    normalise,
    parse_verdict_text,
    run_tests,
)
from mascope.errors import ConfigError
from mascope.models import ScriptedModel

CTX = VerifyContext(task="t", ground_truth="1000")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1,000", "1000"),
        (" Paris. ", "paris"),
        ("3.0", "3"),
        ("$12", "12"),
        ("Hello   World", "hello world"),
    ],
)
def test_normalise(a: str, b: str) -> None:
    assert normalise(a) == normalise(b)


def test_answer_match_modes() -> None:
    assert AnswerMatch(extract="last_number").verify("so the total is 1,000", CTX).passed
    assert not AnswerMatch(mode="exact").verify("1,000", CTX).passed
    assert (
        AnswerMatch("3.14159", mode="numeric", extract="last_number", tolerance=0.01)
        .verify("about 3.14", CTX)
        .passed
    )
    assert AnswerMatch(extract="after_marker").verify("work...\nANSWER: 1000", CTX).passed
    verdict = AnswerMatch().verify("999", CTX)
    assert not verdict.passed and "does not match" in verdict.feedback
    with pytest.raises(ConfigError, match="no expected answer"):
        AnswerMatch().verify("1", VerifyContext(task="t"))


def test_json_schema_check() -> None:
    check = JsonSchemaCheck(
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    )
    assert check.verify('```json\n{"n": 3}\n```').passed
    bad = check.verify('{"n": "three"}')
    assert not bad.passed and "n: 'three' is not of type 'integer'" in bad.feedback
    assert "not JSON" in check.verify("no json here").feedback


def test_code_tests_pass_fail_and_limits() -> None:
    code = "```python\ndef square(x):\n    return x * x\n```"
    tests = "def test_small():\n    assert square(3) == 9\n\ndef test_wrong():\n    assert square(2) == 5\n"
    verdict = CodeTests(tests=tests).verify(code)
    assert not verdict.passed and verdict.score == 0.5
    assert "test_wrong failed" in verdict.feedback and "assert square(2) == 5" in verdict.feedback
    assert CodeTests(tests="assert square(4) == 16").verify(code).passed
    assert (
        "timed out"
        in CodeTests(tests="assert f()", timeout_s=1)
        .verify("def f():\n    while True: pass")
        .feedback
    )
    assert (
        "MemoryError"
        in run_tests("x = bytearray(3_000_000_000)", "assert True", memory_mb=256).errors[0]
    )
    from_agents = CodeTests(code_from="coder", tests_from="tester")
    ctx = VerifyContext(task="t", outputs={"coder": code, "tester": "assert square(5) == 25"})
    assert from_agents.verify("ignored", ctx).passed
    assert (
        "no tests to run"
        in from_agents.verify("x", VerifyContext(task="t", outputs={"coder": code})).feedback
    )


def test_code_runs_isolated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN_FOR_TEST", "do-not-leak")
    result = run_tests(
        "import os\nvalue = os.environ.get('SECRET_TOKEN_FOR_TEST')", "assert value is None"
    )
    assert result.ok


def test_rubric_with_a_model() -> None:
    model = ScriptedModel(
        ['{"passed": false, "score": 0.2, "feedback": "the arithmetic is wrong"}']
    )
    verdict = Rubric("must be correct", model=model).verify("2+2=5", CTX)
    assert (verdict.passed, verdict.score, verdict.feedback) == (
        False,
        0.2,
        "the arithmetic is wrong",
    )
    assert "must be correct" in (model.calls[0].messages[-1].content or "")


def test_ensembles() -> None:
    yes, no = AnswerMatch("1"), AnswerMatch("2")
    assert not Ensemble([yes, no], mode="all").verify("1").passed
    assert Ensemble([yes, no], mode="any").verify("1").passed
    assert not Ensemble([yes, no, no], mode="majority").verify("1").passed
    assert Ensemble([yes, no], mode="mean", threshold=0.5).verify("1").passed


def test_replacement_verdicts() -> None:
    assert parse_verdict_text("pass").passed
    assert parse_verdict_text("fail: off by one").feedback == "off by one"
    assert not parse_verdict_text('{"passed": false, "feedback": "no"}').passed
    with pytest.raises(ConfigError):
        parse_verdict_text("perhaps")


def test_a_recorded_verdict_can_be_given_back_as_a_replacement() -> None:
    from mascope.agents import Verdict, parse_verdict_text, verdict_text

    for v in (
        Verdict(passed=False, score=0.0, feedback="2 + 3 is 5: recount"),
        Verdict(passed=True, score=0.75),
    ):
        back = parse_verdict_text(verdict_text(v))
        assert (back.passed, back.score, back.feedback) == (v.passed, v.score, v.feedback or "")


def test_a_verifier_without_averify_cannot_be_built() -> None:
    from mascope.agents import Verifier

    class Forgetful(Verifier):
        pass

    with pytest.raises(TypeError, match="averify"):
        Forgetful()  # type: ignore[abstract]
