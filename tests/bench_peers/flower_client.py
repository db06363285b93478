"""Celery's Flower HTTP API as a client sees it (taskd's venv, aiohttp): async-apply, then poll
the result every 10 ms."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import Any

import aiohttp
import orjson

BASE = sys.argv[1]
TASK = "celery_peer.hello"
POLL = 0.01


class Client:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.session = self.call(self.open())

    async def open(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    async def together(self, shares: list[int]) -> None:
        await asyncio.gather(*(self.batch(k) for k in shares))

    async def submit(self, name: str) -> str:
        body = orjson.dumps({"args": [name]})
        url = f"{BASE}/api/task/async-apply/{TASK}"
        async with self.session.post(url, data=body) as response:
            return str(orjson.loads(await response.read())["task-id"])

    async def wait(self, task_id: str) -> None:
        while True:
            async with self.session.get(f"{BASE}/api/task/result/{task_id}") as response:
                if orjson.loads(await response.read()).get("state") == "SUCCESS":
                    return
            await asyncio.sleep(POLL)

    async def one(self) -> None:
        await self.wait(await self.submit("x"))

    async def batch(self, k: int) -> None:
        ids = [await self.submit(str(i)) for i in range(k)]
        for task_id in ids:
            await self.wait(task_id)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    from drive import drive

    client = Client()
    drive(
        lambda: client.call(client.one()),
        lambda k: client.call(client.batch(k)),
        lambda shares: client.call(client.together(shares)),
    )
    client.call(client.session.close())
