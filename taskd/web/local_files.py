"""GET /v1/files/{key}/{name}: files of the local backend, at URLs signed for url_ttl."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from taskd.errors import Forbidden, NotFound
from taskd.signing import EXPIRES, SIG, expired, signature_matches
from taskd.storage import FILE_NAME
from taskd.storage.local import LocalStorage
from taskd.web.state import STORAGE


async def serve(request: web.Request) -> web.StreamResponse:
    storage = request.app[STORAGE]
    key, name = request.match_info["key"], request.match_info["name"]
    if not isinstance(storage, LocalStorage) or not FILE_NAME.fullmatch(name) or "." in key:
        raise NotFound(f"not found: {request.path}")
    pairs = list(request.query.items())
    path = request.raw_path.split("?", 1)[0]
    good = signature_matches([await storage.url_key()], path, pairs, request.query.get(SIG, ""))
    if not good or expired(pairs) is not False:
        raise Forbidden("invalid or expired file URL: ask /v1/file?task=KEY for a new one")
    stored = await asyncio.to_thread(storage.stored, key, name)
    if stored is None:
        raise NotFound(f"no such file: {name} of task {key}")
    file, content_type = stored
    # The bytes at this URL never change; the URL itself expires.
    remaining = max(0, int(request.query.get(EXPIRES, "0")) - int(time.time()))
    headers = {
        "Content-Type": content_type,
        "Cache-Control": f"private, max-age={remaining}, immutable",
    }
    return web.FileResponse(file, headers=headers)
