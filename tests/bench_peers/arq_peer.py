"""Raw arq 0.28 (taskd's venv): `arq arq_peer.WorkerSettings`, 10 jobs at once, a 5 ms poll."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import Any, ClassVar

from arq.connections import RedisSettings, create_pool

SETTINGS = RedisSettings.from_dsn(os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0"))
POLL = 0.005


async def hello(ctx: dict[str, Any], name: str) -> str:
    return f"Hello {name}"


class WorkerSettings:
    functions: ClassVar = [hello]
    redis_settings = SETTINGS
    poll_delay = POLL
    max_jobs = 10


class Client:
    """arq's client is async: one event loop in its own thread serves every caller."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.pool = self.call(create_pool(SETTINGS))

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    async def together(self, shares: list[int]) -> None:
        await asyncio.gather(*(self.batch(k) for k in shares))

    async def one(self) -> None:
        job = await self.pool.enqueue_job("hello", "x")
        await job.result(timeout=30, poll_delay=POLL)

    async def batch(self, k: int) -> None:
        jobs = [await self.pool.enqueue_job("hello", str(i)) for i in range(k)]
        for job in jobs:
            await job.result(timeout=120, poll_delay=POLL)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    from drive import drive

    client = Client()
    drive(
        lambda: client.call(client.one()),
        lambda k: client.call(client.batch(k)),
        lambda shares: client.call(client.together(shares)),
    )
