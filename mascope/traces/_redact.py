"""Keeping secrets out of the store: keys, bearer tokens, and secret env values."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

MASK = "[REDACTED]"

# Well-known credential shapes. Deliberately generous: a false positive costs
# a few characters of a trace, a false negative leaks a key.
_PATTERNS = [
    r"sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{16,}",  # OpenAI, Anthropic, Stripe-style
    r"gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{20,}",
    r"xox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack
    r"AKIA[0-9A-Z]{16}",  # AWS access key id
    r"AIza[0-9A-Za-z_\-]{35}",  # Google API key
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",  # JWT
]
# A bearer token: a long run with at least one digit or punctuation, so prose
# ("bearer instruments") is left alone.
_BEARER = re.compile(
    r"(?i)\b(bearer)(\s+)(?=[A-Za-z0-9._~+/=\-]*[0-9._~+/=\-])[A-Za-z0-9._~+/=\-]{12,}"
)
_AUTH_HEADER = re.compile(r"(?i)(authorization|x-api-key|api-key)(\"?\s*[:=]\s*\"?)[^\s\",}]{8,}")
_SECRET_NAME = re.compile(r"(?i)(_KEY|_TOKEN|_SECRET|_PASSWORD|_PASSWD|_PWD|_CREDENTIALS?)$")
_SECRET_FIELD = re.compile(
    r"(?i)^(api[_-]?key|apikey|authorization|password|passwd|secret|client[_-]secret|"
    r"access[_-]?token|refresh[_-]?token|token|.*_(key|token|secret|password))$"
)
_MIN_ENV_SECRET = 6


class Redactor:
    """Replaces secrets in strings and nested JSON-like values with `[REDACTED]`.

    Built from the environment at the time the store opens: the values of
    variables named `*_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD` are masked
    wherever they appear, as are credential-shaped strings and the values of
    dictionary keys that name a secret.
    """

    def __init__(self, env: Mapping[str, str] | None = None, extra: list[str] | None = None):
        env = os.environ if env is None else env
        secrets = {
            v
            for k, v in env.items()
            if _SECRET_NAME.search(k) and len(v.strip()) >= _MIN_ENV_SECRET
        }
        secrets.update(s for s in extra or [] if len(s) >= _MIN_ENV_SECRET)
        # Credential shapes must start a word ("Mask-RCNN-..." holds no key).
        parts = [re.escape(s) for s in sorted(secrets, key=len, reverse=True)]
        parts.append(r"(?<![A-Za-z0-9_\-])(?:" + "|".join(_PATTERNS) + ")")
        self._pattern = re.compile("|".join(parts))

    def text(self, value: str) -> str:
        value = self._pattern.sub(MASK, value)
        if "earer" in value or "EARER" in value:
            value = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", value)
        if (
            "uthorization" in value
            or "pi-key" in value
            or "PI-KEY" in value
            or "UTHORIZATION" in value
        ):
            value = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", value)
        return value

    def value(self, value: Any) -> Any:
        """Redact a JSON-like value recursively (strings, lists, dicts)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                key = str(k)
                if _SECRET_FIELD.match(key) and isinstance(v, str) and v:
                    out[k] = MASK
                else:
                    out[k] = self.value(v)
            return out
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def optional(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)
