"""`taskd serve`: the app on its port, accepting connections itself so that their number
stays below the open-file limit and running out of descriptors never turns into an
accept-error loop."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from taskd.web.app import RUNNER_OPTIONS
from taskd.web.errors import HANDLER_OPTIONS

log = logging.getLogger("taskd.serve")
# Descriptors kept free for Redis, files and the like when max_connections is 0.
FD_MARGIN = 64
REPEAT_INTERVAL = 10.0  # seconds between two log lines about the same repeated event
BACKLOG = 1024  # connections the kernel holds for us while we are at the limit
LIMIT_POLL = 0.05  # seconds between looks at the open connections while at the limit
ACCEPT_PAUSE = 1.0  # seconds before accepting again after a failed accept


def connection_limit(configured: int, open_files: int) -> int:
    return configured or max(1, min(open_files - FD_MARGIN, open_files * 9 // 10))


class Repeats:
    """Logs an event the first time and then at most once per interval, with a count."""

    def __init__(self, interval: float = REPEAT_INTERVAL) -> None:
        self.interval = interval
        self.last: dict[str, float] = {}
        self.count: dict[str, int] = {}

    def log(self, what: str, level: int = logging.WARNING) -> None:
        self.count[what] = self.count.get(what, 0) + 1
        now = time.monotonic()
        if now - self.last.get(what, -self.interval) >= self.interval:
            log.log(level, "%s (%d times since the last report)", what, self.count[what])
            self.last[what], self.count[what] = now, 0


async def accept_forever(
    listener: socket.socket, server: web.Server, limit: int, repeats: Repeats
) -> None:
    """Accept connections while fewer than `limit` are open; beyond it, new connections wait
    in the kernel's backlog until one closes. An accept that fails (no descriptor left) is
    retried after a pause and reported once per interval."""
    loop = asyncio.get_running_loop()
    while True:
        if len(server.connections) >= limit:
            repeats.log(f"{limit} connections open (server.max_connections): new ones wait")
            while len(server.connections) >= limit:
                await asyncio.sleep(LIMIT_POLL)
        try:
            connection, _ = await loop.sock_accept(listener)
        except OSError as exc:
            repeats.log(f"accepting a connection failed: {exc.strerror or exc}", logging.ERROR)
            await asyncio.sleep(ACCEPT_PAUSE)
            continue
        try:
            await loop.connect_accepted_socket(server, connection)
        except OSError as exc:
            connection.close()
            repeats.log(f"a new connection failed: {exc.strerror or exc}", logging.ERROR)


def quiet_handler(repeats: Repeats) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """The loop's exception handler: a repeated event (an accept that fails for lack of
    descriptors) is one line per interval, not a traceback each time."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exception = context.get("exception")
        detail = f": {exception}" if exception is not None else ""
        repeats.log(f"{context.get('message', 'event loop error')}{detail}", logging.ERROR)

    return handle


async def serve_forever(app: web.Application, host: str, port: int, limit: int) -> None:
    """Until SIGINT/SIGTERM; then streams end after their current line (on_shutdown)."""
    loop = asyncio.get_running_loop()
    repeats = Repeats()
    loop.set_exception_handler(quiet_handler(repeats))
    runner = web.AppRunner(app, access_log=None, **RUNNER_OPTIONS, **HANDLER_OPTIONS)
    await runner.setup()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        assert runner.server is not None
        with socket.create_server((host, port), backlog=BACKLOG) as listener:
            listener.setblocking(False)
            accepting = asyncio.create_task(accept_forever(listener, runner.server, limit, repeats))
            log.info("serving http://%s:%d (at most %d connections)", host, port, limit)
            await stop.wait()
            accepting.cancel()
    finally:
        await runner.cleanup()
