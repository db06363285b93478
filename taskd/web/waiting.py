"""Waiting on tasks for blocking requests and NDJSON streams, through the event hub."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aiohttp import web

from taskd.events import Listener
from taskd.records import Snapshot, is_terminal
from taskd.web.responses import json_list
from taskd.web.state import SETTINGS

NDJSON = "application/x-ndjson"


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


async def stream(
    request: web.Request, listener: Listener, keys: Sequence[str]
) -> web.StreamResponse:
    """Line 1: the statuses in request order; then each change; the end when all are terminal."""
    response = web.StreamResponse(headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.content_type = NDJSON
    heartbeat = request.app[SETTINGS].server.heartbeat or None
    try:
        await response.prepare(request)
        last = current(listener, keys) + b"\n"
        while not listener.all_terminal():
            await response.write(last)
            change = await listener.next_change(heartbeat)
            if change is not None:
                last = change[1] + b"\n"
                continue
            if listener.closed:  # the server is stopping: end after the current line
                last = b""
                break
            # Silence: re-send what is still running.
            last = b"".join(
                listener.seen[key].json + b"\n"
                for key in listener.keys
                if not is_terminal(listener.seen[key].json)
            )
        # The last line and the end of the response leave together.
        await response.write_eof(last)
    except ConnectionResetError:
        pass  # the client went away; the caller's `watch` releases the subscription
    return response
