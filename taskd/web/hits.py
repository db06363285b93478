"""Recent result-cache hits of `GET /v1/create_file`, kept per process.

A page repeating an `<img src>` sends the very same request again and again; once one was
answered from the result cache, the same request (same URL, same credential headers) gets the
same redirect from here, without Redis, until the earliest of: the cache entry's end, a
quarter of the redirect target's life, the signed URL's own `expires`.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from aiohttp import web

HitKey = tuple[str, str, str, str, str]


def hit_key(request: web.Request) -> HitKey:
    headers = request.headers
    return (
        request.host,
        request.raw_path,  # path and query as sent: the credentials in them included
        headers.get("Authorization", ""),
        headers.get("Origin", ""),
        headers.get("Referer", ""),
    )


class RecentHits:
    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self.entries: OrderedDict[HitKey, tuple[str, float]] = OrderedDict()

    def get(self, key: HitKey) -> str | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry[1] <= time.time():
            del self.entries[key]
            return None
        return entry[0]

    def put(self, key: HitKey, location: str, until: float) -> None:
        if until <= time.time():
            return
        self.entries[key] = (location, until)
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
