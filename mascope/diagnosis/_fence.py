"""Untrusted trace text inside a model prompt: it can say anything, but it cannot
change the prompt's structure.

Every field that comes from a run (task, answers, agent names, step kinds,
contents, tool calls and results, errors, rule findings) goes through `inline`
or `block` before it is put in a judge or attribution prompt. Two guarantees:

- no fence tag survives: anything that reads as `<trace>` or `</trace>` (any
  case, spaces or invisible characters inside, look-alike brackets, slashes
  and letters) has its opening bracket replaced by `&lt;`;
- no content line can pass for a structural line: `inline` text has no line
  breaks at all, and every continuation line of `block` text is indented, so
  only the prompt's own lines start at the margin (`Step 7 - ...`, the fences).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

FENCE_TAG = "trace"
FENCE_OPEN = f"<{FENCE_TAG}>"
FENCE_CLOSE = f"</{FENCE_TAG}>"
INDENT = "    "
"""What each continuation line of a multi-line field starts with."""

# Characters a model (or a careless parser) may read as an angle bracket or a
# slash, and invisible ones that may sit between the letters of a tag.
_LT = "<\uff1c\ufe64\u2329\u3008\u27e8\u2039\u02c2\u276e\u2770\u29fc"
_GT = ">\uff1e\ufe65\u232a\u3009\u27e9\u203a\u02c3\u276f\u2771\u29fd"
_SLASH = "/\\\uff0f\u2044\u2215\u29f8\u29f9\uff3c"
_GAP = (
    r"[\s\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u0300-\u036f\u061c\u115f\u1160\u17b4\u17b5\u180e\u1ab0-\u1aff\u1dc0-\u1dff"
    r"\u200b-\u200f\u202a-\u202e\u2060-\u206f\u20d0-\u20ff\u3164\ufe00-\ufe0f\ufe20-\ufe2f"
    r"\ufeff\uffa0\U000e0000-\U000e007f\U000e0100-\U000e01ef]*"
)
# Fullwidth, Cyrillic and Greek look-alikes of the letters of "trace".
_LOOKALIKE = {
    "t": "tT\uff54\uff34\u0442\u0422\u03c4\u03a4\u1d1b",
    "r": "rR\uff52\uff32\u0433\u1d26\u0280",
    "a": "aA\uff41\uff21\u0430\u0410\u03b1\u0391\u1d00",
    "c": "cC\uff43\uff23\u0441\u0421\u03f2\u03f9\u1d04",
    "e": "eE\uff45\uff25\u0435\u0415\u03b5\u0395\u1d07",
}


def _tag(word: str) -> re.Pattern[str]:
    letters = _GAP.join(f"[{re.escape(_LOOKALIKE.get(ch, ch))}]" for ch in word)
    return re.compile(
        rf"[{re.escape(_LT)}]{_GAP}(?:[{re.escape(_SLASH)}]{_GAP})*{letters}", re.IGNORECASE
    )


TAG = _tag(FENCE_TAG)
"""Anything that reads as an opening or closing fence tag (used by tests to count them)."""

# Every character `str.splitlines` (and so a model's tokenizer, roughly) treats as a line break.
_LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    folded = unicodedata.normalize("NFKC", ch)
    return folded if len(folded) == 1 else ch


def _fold(text: str) -> str:
    """`text` with each character replaced by its compatibility form when that is one
    character (mathematical, circled, fullwidth letters read as plain ones); same length,
    so a match in it is a match at the same place in `text`."""
    return "".join(map(_fold_char, text))


def defuse(text: str) -> str:
    """`text` with every fence tag in it made inert (its bracket becomes `&lt;`)."""
    if text.isascii():
        return TAG.sub(lambda m: "&lt;" + m.group(0)[1:], text)
    out: list[str] = []
    done = 0
    for m in TAG.finditer(_fold(text)):
        out += [text[done : m.start()], "&lt;", text[m.start() + 1 : m.end()]]
        done = m.end()
    out.append(text[done:])
    return "".join(out)


def inline(text: str | None) -> str:
    """A one-line field (agent name, step kind, tool name): tags defused, line breaks made spaces."""
    return _LINE_BREAK.sub(" ", defuse(text or ""))


def block(text: str | None) -> str:
    """A free-text field: tags defused, and every line after the first indented, so
    the field continues the line it starts on and no line of it reaches the margin."""
    lines = _LINE_BREAK.split(defuse(text or ""))
    return ("\n" + INDENT).join(lines)


def fenced(lines: list[str]) -> str:
    """Already-rendered trace lines between the fence tags, one per line."""
    return "\n".join([FENCE_OPEN, *lines, FENCE_CLOSE])


__all__ = ["FENCE_CLOSE", "FENCE_OPEN", "INDENT", "TAG", "block", "defuse", "fenced", "inline"]
