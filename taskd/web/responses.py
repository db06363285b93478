"""JSON answers assembled from status objects that are already JSON bytes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web


def json_bytes(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def json_value(
    value: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    try:
        body = orjson.dumps(value)
    except orjson.JSONEncodeError:  # text from a request that was not UTF-8: show it escaped
        body = orjson.dumps(safe_text(value))
    return json_bytes(body, status, headers)


def safe_text(value: Any) -> Any:
    """`value` with every string made valid UTF-8 (bad bytes as backslash escapes)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {safe_text(k): safe_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe_text(v) for v in value]
    return value


def json_list(items: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"
