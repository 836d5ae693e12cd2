"""Ids that sort by creation time (ULIDs: 48-bit milliseconds + 80 random bits)."""

from __future__ import annotations

import os
import re
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def new_id() -> str:
    """A 26-character id, strictly increasing within this process."""
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            rand = _last_rand + 1  # same millisecond: keep the order strict
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
        _last_ms, _last_rand = ms, rand
    value = (ms << 80) | rand
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""What a stored id may look like: mascope's ULIDs, UUIDs and other plain tokens.

Nothing that could be a path (`/`, `..`), a shell or terminal control, or
unbounded in length, so an id is safe to show and to put in a file name.
"""


def is_valid_id(text: object) -> bool:
    """Whether `text` is an id mascope accepts from outside (see `ID_PATTERN`)."""
    return isinstance(text, str) and ID_PATTERN.fullmatch(text) is not None


def file_safe(text: str, *, max_len: int = 64) -> str:
    """`text` made safe as one part of a file name: no separators, no leading dot, bounded."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).lstrip(".")[:max_len]
    return cleaned or "unnamed"
