"""Waiting on tasks for blocking requests and NDJSON streams, through the event hub."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aiohttp import web

from taskd.events import Listener
from taskd.records import Snapshot, is_terminal
from taskd.web.responses import json_list
from taskd.web.state import METRICS, SETTINGS

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"


def seed(listener: Listener, keys: Sequence[str], snapshots: Sequence[Snapshot]) -> None:
    for key, snapshot in zip(keys, snapshots, strict=True):
        listener.seed(key, snapshot)


async def wait_all(listener: Listener, timeout: float) -> None:
    """Until every task is terminal or `timeout` passes; the caller answers the newest then."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while not listener.all_terminal() and not listener.closed:
                await listener.next_change()
    listener.drain()


def current(listener: Listener, keys: Sequence[str]) -> bytes:
    return json_list(listener.seen[k].json for k in keys)


class Framing:
    """NDJSON (the Dragon default): line 1 the list of statuses, then one status per line;
    silence re-sends what still runs."""

    content_type = NDJSON

    def start(self, statuses: bytes) -> bytes:
        return statuses + b"\n"

    def change(self, key: str, version: int, status: bytes) -> bytes:
        return status + b"\n"

    def silence(self, running: Sequence[bytes]) -> bytes:
        return b"".join(status + b"\n" for status in running)

    def end(self) -> bytes:
        return b""


class ServerSentEvents(Framing):
    """`Accept: text/event-stream`: the same events for EventSource. `id: KEY.VERSION` on
    every change; a comment on silence; `event: end` once every task is terminal, so the
    client knows not to reconnect. A reconnect (Last-Event-ID) starts from a snapshot."""

    content_type = SSE

    def start(self, statuses: bytes) -> bytes:
        return b"retry: 1000\nevent: snapshot\ndata: " + statuses + b"\n\n"

    def change(self, key: str, version: int, status: bytes) -> bytes:
        return b"id: %s.%d\ndata: %s\n\n" % (key.encode(), version, status)

    def silence(self, running: Sequence[bytes]) -> bytes:
        return b": heartbeat\n\n"

    def end(self) -> bytes:
        return b"event: end\ndata: end\n\n"


def framing_of(request: web.Request) -> Framing:
    return ServerSentEvents() if SSE in request.headers.get("Accept", "") else Framing()


async def stream(
    request: web.Request, listener: Listener, keys: Sequence[str]
) -> web.StreamResponse:
    """The statuses in request order; then each change; the end when all are terminal."""
    framing = framing_of(request)
    response = web.StreamResponse(headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.content_type = framing.content_type
    heartbeat = request.app[SETTINGS].server.heartbeat or None
    open_streams = request.app[METRICS].open_streams
    open_streams.inc()
    try:
        await response.prepare(request)
        last = framing.start(current(listener, keys))
        while not listener.all_terminal():
            await response.write(last)
            change = await listener.next_change(heartbeat)
            if change is not None:
                key, status = change
                last = framing.change(key, listener.seen[key].version, status)
                continue
            if listener.closed:  # the server is stopping: end after the current line
                last = b""
                break
            last = framing.silence(
                [
                    listener.seen[key].json
                    for key in listener.keys
                    if not is_terminal(listener.seen[key].json)
                ]
            )
        else:
            last += framing.end()
        # The last line and the end of the response leave together.
        await response.write_eof(last)
    except ConnectionResetError:
        pass  # the client went away; the caller's `watch` releases the subscription
    finally:
        open_streams.dec()
    return response
