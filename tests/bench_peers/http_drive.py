"""The driver for the HTTP clients (taskd's venv, aiohttp): one session in the driver's loop."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from drive import AsyncClient, LoopThread, drive_async


async def open_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


def drive_http(make_client: Callable[[aiohttp.ClientSession], AsyncClient]) -> None:
    runner = LoopThread()
    session = runner.call(open_session())
    drive_async(runner, make_client(session))
    runner.call(session.close())
