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
    r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe secret and restricted keys
    r"whsec_[A-Za-z0-9]{16,}",  # Stripe webhook signing secret
    r"xox[abeprs]-[A-Za-z0-9\-]{10,}",  # Slack
    r"xapp-[0-9]-[A-Za-z0-9\-]{10,}",  # Slack app-level token
    r"(?:AKIA|ASIA)[0-9A-Z]{16}",  # AWS access key id (long-term and temporary)
    r"AIza[0-9A-Za-z_\-]{35}",  # Google API key
    r"ya29\.[A-Za-z0-9_\-]{20,}",  # Google OAuth access token
    r"glpat-[A-Za-z0-9_\-]{20,}",  # GitLab
    r"npm_[A-Za-z0-9]{36}",  # npm
    r"SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",  # SendGrid
    # A PEM private key, to its END line or, when the text was cut off, to the end.
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
    r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",  # JWT
]
# A bearer token: a long run with at least one digit or punctuation, so prose
# ("bearer instruments") is left alone.
_BEARER = re.compile(
    r"(?i)\b(bearer)(\s+)(?=[A-Za-z0-9._~+/=\-]*[0-9._~+/=\-])[A-Za-z0-9._~+/=\-]{12,}"
)
# The scheme word (`Basic`, `Bearer`, ...) is kept and what follows it masked.
_AUTH_HEADER = re.compile(
    r"(?i)(authorization|x-api-key|api-key)"
    r"(\"?\s*[:=]\s*\"?(?:(?:basic|bearer|token|digest|negotiate|apikey)\s+)?)[^\s\",}]{8,}"
)
_SECRET_NAME = re.compile(r"(?i)(_KEY|_TOKEN|_SECRET|_PASSWORD|_PASSWD|_PWD|_CREDENTIALS?)$")
_ENV_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_SECRET_FIELD = re.compile(
    r"(?i)^(api[_-]?key|apikey|authorization|password|passwd|secret|client[_-]secret|"
    r"access[_-]?token|refresh[_-]?token|token|.*_(key|token|secret|password))$"
)
_MIN_ENV_SECRET = 6

# A secret-named key followed by its value inside free text: JSON and Python
# dicts (`"password": "..."`), keyword arguments and shell (`api_key=...`,
# `DB_PASSWORD=...`), YAML and headers (`token: ...`), command-line flags
# (`--password ...`). A name is secret when it ends in one of these words,
# whatever prefix it has (`user_password`, `X-Api-Key`, `aws_secret_access_key`).
_KEY_NAME = (
    r"(?:[A-Za-z0-9]+[_.\-])*"
    r"(?:passw(?:or)?d|passphrase|pwd|secret|token|api[_\-]?key|apikey|"
    r"(?:access|private|secret|signing|encryption|master)[_\-]?key|credentials?)"
)
# Values that are not secrets, so masking them would only hide what the run did.
_NOT_A_VALUE = r"(?!(?:null|none|true|false|undefined|\[REDACTED\])(?![^\s\"',;&)\]}]))"
_STOP = r"\s\"',;&)\]}"


def _value(tag: str, unquoted: str) -> str:
    """A quoted value (any length) or an unquoted one matching `unquoted`."""
    return (
        rf"(?:(?P<{tag}q>\\*[\"'])(?P<{tag}qv>(?:[^\"'\n\\]|\\(?![\"']))+)"
        rf"|{_NOT_A_VALUE}(?P<{tag}uv>{unquoted}))"
    )


_PLAIN = rf"[^{_STOP}]{{3,}}"
# After `key:` an unquoted value must look like a credential (a digit or symbol
# in it, or long), so prose such as "the secret: patience" stays readable.
_PLAIN_AFTER_COLON = rf"(?=[^{_STOP}]*[0-9_.~+/=!@#$%^*\-]|[^{_STOP}]{{12}})[^{_STOP}]{{6,}}"
_KEY_VALUE = re.compile(
    # "password": "..."   'token': '...'   \"api_key\": \"...\"
    rf"(?P<a>\\*[\"']{_KEY_NAME}\\*[\"']\s*[:=]\s*)"
    + _value("a", _PLAIN)
    # password="..."   API_KEY=sk-...   --password=...   export DB_PASSWORD=...
    + rf"|(?P<b>(?<![A-Za-z0-9_.\-])-{{0,2}}{_KEY_NAME}\s*=(?!=)\s*)"
    + _value("b", _PLAIN)
    # --password hunter2
    + rf"|(?P<c>(?<![A-Za-z0-9_.\-])--?{_KEY_NAME}[ \t]+)(?!-)"
    + _value("c", _PLAIN)
    # token: abc123 (YAML, headers, prose)
    + rf"|(?P<d>(?<![A-Za-z0-9_.\-]){_KEY_NAME}[ \t]*:[ \t]*)"
    + _value("d", _PLAIN_AFTER_COLON),
    re.IGNORECASE,
)
_KEY_WORDS = ("pass", "pwd", "secret", "token", "key", "credential")
# user:password@host in a URL. The user may be empty (`redis://:pw@host`) and a
# careless password may hold `@`: the password runs to the last `@` before the host.
_URL_CREDENTIALS = re.compile(
    r"(?P<p>\b[a-z][a-z0-9+.\-]*://[^\s:/@]*:)(?P<v>[^\s/]{3,})(?=@[^\s@/]+)", re.I
)


# Values that stand for a secret without being one: placeholders in examples
# (`'YOUR_API_KEY'`, `<token>`, `${TOKEN}`) and, unquoted, references in code
# (`api_key=API_KEY`, `token=os.environ[...]`, `password=getpass(`).
_PLACEHOLDER = re.compile(
    r"(?i)^(?:your[\w\- ]*|<[^<>]*>|\[[^\[\]]*\]|x{3,}|\*+|\.{3}|\u2026|changeme|example|"
    r"placeholder|\$\{?\w+\}?|%\(\w+\)s|\{\{?\s*[\w.]*\s*\}?\})$"
)
_CODE_REFERENCE = re.compile(
    r"^(?:[A-Z]+(?:_[A-Z]+)+|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+[(\[]?|[A-Za-z_]\w*[(\[])$"
)


_KEY_RUN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _mask_key_values(value: str) -> str:
    """Mask the value after every secret-named key in `value`.

    `_KEY_VALUE` is tried only where a key can start (the beginning of the
    word holding a secret word, or the quote before it): run over all the
    text, the pattern would cost a microsecond or two a character.
    """
    lowered = value.lower()
    if len(lowered) != len(value):  # lower() changed the length: indexes would not match
        return _KEY_VALUE.sub(_mask_value, value)
    starts: set[int] = set()
    for word in _KEY_WORDS:
        at = lowered.find(word)
        while at != -1:
            start = at
            while start > 0 and value[start - 1] in _KEY_RUN:
                start -= 1
            starts.add(start)
            if start > 0 and value[start - 1] in "\"'":
                quote = start - 1
                while quote > 0 and value[quote - 1] == "\\":
                    quote -= 1
                starts.add(quote)
            at = lowered.find(word, at + len(word))
    if not starts:
        return value
    out: list[str] = []
    done = 0
    for start in sorted(starts):
        if start < done:
            continue
        m = _KEY_VALUE.match(value, start)
        if m is not None:
            out += [value[done:start], _mask_value(m)]
            done = m.end()
    out.append(value[done:])
    return "".join(out)


def _mask_value(m: re.Match[str]) -> str:
    """Keep the key and the quotes of a secret-named key/value match; mask the value."""
    for tag in "abcd":
        prefix = m.group(tag)
        if prefix is None:
            continue
        quoted, plain = m.group(tag + "qv"), m.group(tag + "uv")
        value = quoted if quoted is not None else plain
        key = prefix.strip(" \t:=\"'\\-").lower()
        if (
            _PLACEHOLDER.match(value)
            or (plain is not None and _CODE_REFERENCE.match(plain))
            or value.lower() == key
        ):
            return m.group(0)
        return f"{prefix}{m.group(tag + 'q') or ''}{MASK}"
    return m.group(0)


_REMEMBER_MOST = 4096
_REMEMBER_LONGEST = 64 * 1024


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
        self._seen: dict[str, str] = {}
        """Strings already redacted, and what they became. A run hands the same
        strings over and over (the task and the conversation in every checkpoint
        and in every model call's recorded inputs); each is scanned once."""

    def text(self, value: str) -> str:
        done = self._seen.get(value)
        if done is not None:
            return done
        masked = self._text(value)
        if len(value) <= _REMEMBER_LONGEST:
            if len(self._seen) >= _REMEMBER_MOST:
                self._seen.clear()  # cheaper than tracking recency; refills with what recurs
            self._seen[value] = masked
        return masked

    def _text(self, value: str) -> str:
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
        value = _mask_key_values(value)
        if "://" in value:
            value = _URL_CREDENTIALS.sub(lambda m: f"{m.group('p')}{MASK}", value)
        return value

    def strings(self, value: Any) -> Any:
        """Redact every string inside a nested value (text rules only, no field names).

        For data whose keys are structure rather than field names (checkpoints,
        export documents): masking by key there would break what reads it back.
        """
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.strings(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.strings(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.strings(v) for v in value)
        return value

    def value(self, value: Any) -> Any:
        """Redact a JSON-like value recursively (strings, lists, dicts)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                key = str(k)
                # `${NAME}` only names a variable (an MCP server's env): keep it, so a
                # resumed run can read the secret from the environment again.
                if (
                    _SECRET_FIELD.match(key)
                    and isinstance(v, str)
                    and v
                    and not _ENV_REF.fullmatch(v)
                ):
                    out[k] = MASK
                else:
                    out[k] = self.value(v)
            return out
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def optional(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)
