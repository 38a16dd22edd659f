"""Secret scrubbing applied to everything before it reaches disk.

Two nets: keys that name a credential (``api_key``, ``authorization``, ``*_secret``, …) have their
values replaced, and known secret values (API keys from the environment or from an SDK client) and
key-shaped strings are replaced wherever they appear in text.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from typing import Any

REDACTED = "[REDACTED]"

# The patterns are compiled when first used (re keeps them): compiling them all cost every run's
# start ~4 M instructions, and a clean run needs none of them.
_SECRET_KEY = (
    r"(api[_-]?key|apikey|secret|password|passwd|authorization|credential|private[_-]?key"
    r"|access[_-]?token|refresh[_-]?token|auth[_-]?token|session[_-]?token|id[_-]?token|api[_-]?token"
    r"|bearer|^token$|^x-api-key$|cookie)"
)
# Environment variables whose values are secrets: names holding one of these (any case).
_SECRET_ENV_WORDS = ("key", "secret", "token", "password", "passwd", "credential")
# Provider key shapes: OpenAI/Anthropic style sk-…, bearer headers, AWS access keys, GitHub tokens.
# Each regex runs only when its literal prefix occurs: a plain `in` test is far cheaper than a scan.
_SECRET_SHAPES = (
    ("sk-", r"sk-[A-Za-z0-9_\-]{16,}"),
    ("Bearer ", r"(?<=Bearer )[A-Za-z0-9_\-\.=]{16,}"),
    ("AKIA", r"AKIA[0-9A-Z]{16}"),
    ("gh", r"gh[pousr]_[A-Za-z0-9]{30,}"),
)
_MIN_SECRET_LEN = 8
_SCALARS = frozenset({str, int, float, bool, type(None)})


# Every name _SECRET_KEY matches contains one of these: text without them holds no such field.
_KEY_FRAGMENTS = ("key", "secret", "passw", "authoriz", "credential", "token", "bearer", "cookie")


_FRAGMENTS_BUT_TOKEN = tuple(f for f in _KEY_FRAGMENTS if f != "token")
_GITHUB_PREFIXES = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")
_CONTAINERS = (dict, list, tuple)
# Where a credential pattern with "token" written with "_" would sit in a "…_tokens" name
# (access_, refresh_, auth_, session_, id_token: the forms "-" and "" do not end in "_tokens").
# Longer than the names themselves where a count name ends alike (completion_tokens, cached_tokens).
_TOKEN_CREDENTIAL_ENDS = ("s_tokens", "h_tokens", "session_tokens", "id_tokens")


def _only_count_names(low: str) -> bool:
    """Whether every "token" in `low` belongs to a "…_tokens" name that no credential pattern matches
    (prompt_tokens, cached_tokens, max_tokens …: every LLM call's usage and parameters)."""
    if low.count("token") != low.count("_tokens"):
        return False
    for end in _TOKEN_CREDENTIAL_ENDS:
        if end in low:
            return False
    return True


def _github_prefix(text: str) -> bool:
    return any(p in text for p in _GITHUB_PREFIXES)


def has_key_fragment(text: str) -> bool:
    low = text.lower()
    return any(f in low for f in _KEY_FRAGMENTS)


_checked_names: set[str] = set()  # field names seen and found to name no credential


def has_secret_key(value: Any) -> bool:
    """Whether a JSON-like value has a credential-named field anywhere (a superset of what
    `Redactor.obj` blanks: the field's value is not looked at). Names already found harmless are
    remembered, so a dict of known names costs one set comparison."""
    stack = [value]
    pop, push, checked = stack.pop, stack.append, _checked_names
    while stack:
        x = pop()
        if isinstance(x, dict):
            if not x.keys() <= checked:
                for k in x.keys() - checked:
                    if not isinstance(k, str) or is_secret_key(k):
                        return True
                    if len(checked) < 10_000:
                        checked.add(k)
            x = x.values()
        elif not isinstance(x, (list, tuple)):
            continue
        for y in x:
            if y.__class__ in _CONTAINERS or isinstance(y, _CONTAINERS):
                push(y)
    return False


@functools.lru_cache(maxsize=4096)
def is_secret_key(name: str) -> bool:
    return bool(re.search(_SECRET_KEY, name, re.IGNORECASE))


class Redactor:
    def __init__(self, secrets: set[str] | None = None):
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: str | None = None
        self._secret_texts: tuple[str, ...] = ()  # as `may_change` sees them: UTF-8 bytes, one character each
        for s in secrets or ():
            self.add_secret(s)

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> "Redactor":
        env = os.environ if environ is None else environ
        return cls({v for k, v in env.items() if any(w in k.casefold() for w in _SECRET_ENV_WORDS)})

    def add_secret(self, value: Any) -> None:
        if not isinstance(value, str) or len(value) < _MIN_SECRET_LEN:
            return
        with self._lock:
            if value in self._secrets:
                return
            self._secrets.add(value)
            # Longest first so a secret that contains another is replaced whole.
            alts = sorted(self._secrets, key=len, reverse=True)
            self._pattern = "|".join(re.escape(a) for a in alts)  # compiled at its first use
            self._secret_texts = tuple(a.encode("utf-8", "surrogatepass").decode("latin-1") for a in alts)

    def text(self, s: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            s = re.sub(pattern, REDACTED, s)
        for prefix, shape in _SECRET_SHAPES:
            if prefix in s:
                s = re.sub(shape, REDACTED, s)
        return s

    def may_change(self, blob: bytes, values: Any) -> bool:
        """False when redaction is sure to change nothing: `blob` (the values' strings as UTF-8, as
        marshal writes them) holds no known secret and no key shape, and no field of `values` is named
        like a credential. A cheap test, so that the encoding of a clean span can wait.

        The blob is searched as text, one character a byte (latin-1): `in` on bytes first tries its
        operand as an integer, and formats and drops an error each time (~2,000 instructions a test,
        more than searching a short blob)."""
        text = blob.decode("latin-1")
        for secret in self._secret_texts:
            if secret in text:
                return True
        if "sk-" in text or "AKIA" in text or ("gh" in text and _github_prefix(text)):
            return True
        low = blob.lower().decode("latin-1")  # ASCII letters only, as bytes.lower does
        for fragment in _FRAGMENTS_BUT_TOKEN:  # "bearer" among them: "Bearer " is a key shape too
            if fragment in low:
                return "Bearer " in text or has_secret_key(values)
        return "token" in low and not _only_count_names(low) and has_secret_key(values)

    def obj(self, value: Any) -> Any:
        """Copy of a JSON-like value with credential-named fields blanked (text is scrubbed later)."""
        cls = value.__class__
        if cls in _SCALARS:
            return value
        if cls is dict or isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if isinstance(k, str) and is_secret_key(k) and v is not None and v != "":
                    out[k] = REDACTED
                else:
                    out[k] = v if v.__class__ in _SCALARS else self.obj(v)
            return out
        if cls is list or isinstance(value, (list, tuple)):
            return [v if v.__class__ in _SCALARS else self.obj(v) for v in value]
        return value


def redact_headers(redactor: Redactor, headers: list[list[str]]) -> list[list[str]]:
    """HTTP headers as they may be kept: a credential-named header's value blanked (`set-cookie`,
    `authorization`, `x-api-key` …), known secrets and key shapes replaced in the others."""
    return [[name, REDACTED if is_secret_key(name) and value else redactor.text(value)] for name, value in headers]
