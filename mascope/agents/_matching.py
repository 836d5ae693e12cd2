"""Answer matching: how an answer is compared with an expected one.

One implementation for the `answer_match` verifier and for scoring a run's
final answer against its ground truth.
"""

from __future__ import annotations

import contextlib
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

MatchMode = Literal["contains", "exact", "normalised", "numeric", "regex"]
MATCH_MODES: tuple[MatchMode, ...] = ("contains", "exact", "normalised", "numeric", "regex")
Extract = Literal["all", "last_number", "after_marker"]

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")
_NUM = r"(?:(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|(?<![\w.])\.\d+)"
# A token is a number (thousands separators and decimals kept together; a minus
# sign only when it does not join two words, as in 24-9) or a run of letters.
_TOKEN = re.compile(rf"(?:(?<![\w-])-)?{_NUM}|\w+")


@dataclass(frozen=True)
class MatchResult:
    """Whether an answer matched, how, and where."""

    matched: bool
    matcher: str
    """The mode (`contains`, `numeric`, ...) or the function that decided."""
    compared: str
    """The part of the answer that was compared (after extraction)."""
    span: tuple[int, int] | None = None
    """Where in the whole answer the expected answer was found, if it was."""
    found: str | None = None
    """The text at `span`."""

    def describe(self) -> str:
        """One line for people: `contains: matched '330' at characters 17-20`."""
        if self.matched and self.span is not None:
            shown = (
                self.found
                if self.found is None or len(self.found) <= 60
                else self.found[:57] + "..."
            )
            return f"{self.matcher}: matched {shown!r} at characters {self.span[0]}-{self.span[1]}"
        return f"{self.matcher}: {'matched' if self.matched else 'no match'}"


def extract_answer(text: str, how: Extract = "all", marker: str = "ANSWER:") -> str:
    """The part of an output that is the answer."""
    if how == "last_number":
        return _last_number(text)
    begin, end = _extract_span(text, how, marker)
    return text[begin:end].strip()


def _last_number(text: str) -> str:
    numbers = _NUMBER.findall(text)
    return numbers[-1].replace(",", "") if numbers else ""


def _extract_span(text: str, how: Extract, marker: str) -> tuple[int, int]:
    """Where the compared part lies in `text` (the whole text unless after a marker)."""
    if how == "after_marker":
        idx = text.upper().rfind(marker.upper())
        if idx >= 0:
            return idx + len(marker), len(text)
    return 0, len(text)


def normalise(text: str) -> str:
    """Case, whitespace, punctuation at the ends, thousands separators and number formats."""
    t = unicodedata.normalize("NFKC", text).strip().lower()
    t = re.sub(r"\s+", " ", t).strip(" .!?;:'\"`")
    t = t.replace("$", "")
    plain = t.replace(",", "")
    try:
        number = float(plain)
    except ValueError:
        return t
    return _number_key(number) if math.isfinite(number) else t


def _number_key(number: float) -> str:
    return str(int(number)) if number == int(number) else repr(number)


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """Normalised words and numbers with their character offsets in `text`."""
    out: list[tuple[str, int, int]] = []
    # The minus sign (U+2212) that math text and some models write is a minus.
    folded = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    # NFKC can change lengths; offsets are only exact when it did not.
    source = folded if len(folded) == len(text) else text.replace("\u2212", "-")
    for m in _TOKEN.finditer(source):
        raw = m.group(0)
        # Turkish dotted capital I folds to "i" plus a combining dot: compare it as "i".
        key = raw.casefold().replace("i\u0307", "i")
        if raw.lstrip("-.")[:1].isdigit():
            with contextlib.suppress(ValueError, OverflowError):
                key = _number_key(float(raw.replace(",", "")))
        out.append((key, m.start(), m.end()))
    return out


def find_contained(text: str, expected: str) -> tuple[int, int] | None:
    """Where `expected` occurs in `text` as whole words and numbers, after normalising
    case, punctuation, whitespace, thousands separators and number formats."""
    want = [t[0] for t in _tokens(expected)]
    if not want:
        return None
    have = _tokens(text)
    for i in range(len(have) - len(want) + 1):
        if all(have[i + j][0] == want[j] for j in range(len(want))):
            return have[i][1], have[i + len(want) - 1][2]
    return None


def match_answer(
    answer: str,
    expected: str,
    *,
    mode: MatchMode = "contains",
    extract: Extract = "after_marker",
    marker: str = "ANSWER:",
    tolerance: float = 1e-6,
) -> MatchResult:
    """Compare `answer` with `expected`.

    `contains`: the expected answer appears in the answer as whole words or
    numbers after normalising ("Paris." matches "Paris", "1,000.0" matches
    "1000"; "18" does not match "180", nor "Paris" "Parisian"). `exact`: the
    same text. `normalised`: equal after normalising. `numeric`: the last
    number is within `tolerance`. `regex`: `expected` is a pattern searched
    for. `extract` picks the part compared: `all`, `after_marker` (the text
    after the last `marker`, or all of it when there is none) or `last_number`.
    """
    if extract == "last_number":
        got = _last_number(answer)
        start = answer.rfind(got) if got else -1
        offset = max(start, 0)
    else:
        begin, end = _extract_span(answer, extract, marker)
        part = answer[begin:end]
        got = part.strip()
        offset = begin + (len(part) - len(part.lstrip()))
    span: tuple[int, int] | None = None
    if mode == "exact":
        ok = got == expected
    elif mode == "numeric":
        try:
            ok = abs(float(_last_number(got)) - float(expected.replace(",", ""))) <= tolerance
        except ValueError:
            ok = False
    elif mode == "regex":
        try:
            found = re.search(expected, got)
        except re.error:
            found = None
        ok = found is not None
        if found is not None:
            span = (offset + found.start(), offset + found.end())
    elif mode == "contains":
        where = find_contained(got, expected)
        # An expected answer with no words or numbers in it ("?") can only be equal.
        ok = where is not None or (not _tokens(expected) and normalise(got) == normalise(expected))
        if where is not None:
            span = (offset + where[0], offset + where[1])
    else:
        ok = normalise(got) == normalise(expected)
    if ok and span is None and got:
        span = (offset, offset + len(got))
    return MatchResult(ok, mode, got, span, answer[span[0] : span[1]] if span else None)
