"""Signed URLs: HMAC-SHA256 of a canonical query, for `<img src>` creates and stored files."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Sequence
from urllib.parse import quote, urlsplit

from multidict import MultiDict
from yarl import URL

SIG = "sig"
EXPIRES = "expires"
EXPIRES_FORM = re.compile(r"[0-9]{1,12}")  # unix seconds, ASCII digits only


def encode(value: str) -> str:
    """RFC 3986 percent-encoding: unreserved characters kept, space as %20."""
    return quote(value, safe="-._~")


def canonical(path: str, pairs: Iterable[tuple[str, str]]) -> str:
    """PATH as sent, "?", then every parameter but `sig`, encoded, sorted, joined with &."""
    encoded = sorted((encode(k), encode(v)) for k, v in pairs if k != SIG)
    return path + "?" + "&".join(f"{k}={v}" for k, v in encoded)


def signature(key: bytes, path: str, pairs: Iterable[tuple[str, str]]) -> str:
    digest = hmac.new(key, canonical(path, pairs).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def signature_matches(
    keys: Sequence[bytes], path: str, pairs: Sequence[tuple[str, str]], presented: str
) -> bool:
    """Constant-time against every key (rotation); all keys are tried whatever matched first."""
    given = presented.encode()  # bytes: compare_digest refuses non-ASCII text
    results = [hmac.compare_digest(signature(key, path, pairs).encode(), given) for key in keys]
    return any(results)


def expired(pairs: Sequence[tuple[str, str]], now: float | None = None) -> bool | None:
    """Whether `expires` (unix seconds) has passed; None if it is malformed."""
    values = [v for k, v in pairs if k == EXPIRES]
    if not values:
        return False
    if len(values) > 1 or not EXPIRES_FORM.fullmatch(values[0]):
        return None
    return int(values[0]) < (time.time() if now is None else now)


def sign_url(url: str, key: bytes, extra: Iterable[tuple[str, str]] = ()) -> str:
    """`url` with `extra` parameters added and `sig` appended; the path is used as written."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    pairs: MultiDict[str] = MultiDict(URL(url, encoded=True).query)
    pairs.extend(extra)
    pairs.popall(SIG, None)
    items = list(pairs.items())
    sig = signature(key, urlsplit(base).path or "/", items)
    return base + "?" + "&".join(f"{encode(k)}={encode(v)}" for k, v in [*items, (SIG, sig)])
