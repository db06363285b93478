"""Celery's Flower HTTP API as a client sees it (taskd's venv, aiohttp): async-apply, then poll
the result every 10 ms."""

from __future__ import annotations

import asyncio
import os
import sys

import aiohttp
import orjson

BASE = sys.argv[1]
TASK = "celery_peer.hello"
POLL = 0.01


class Client:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

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
    from http_drive import drive_http

    drive_http(Client)
