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
    return json_bytes(orjson.dumps(value), status, headers)


def json_list(items: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"
