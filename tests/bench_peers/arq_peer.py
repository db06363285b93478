"""Raw arq 0.28 (taskd's venv): `arq arq_peer.WorkerSettings`, 10 jobs at once, a 5 ms poll."""

from __future__ import annotations

import os
import sys
from typing import Any, ClassVar

from arq.connections import ArqRedis, RedisSettings, create_pool

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
    def __init__(self, pool: ArqRedis) -> None:
        self.pool = pool

    async def one(self) -> None:
        job = await self.pool.enqueue_job("hello", "x")
        await job.result(timeout=30, poll_delay=POLL)

    async def batch(self, k: int) -> None:
        jobs = [await self.pool.enqueue_job("hello", str(i)) for i in range(k)]
        for job in jobs:
            await job.result(timeout=120, poll_delay=POLL)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    from drive import LoopThread, drive_async

    runner = LoopThread()
    drive_async(runner, Client(runner.call(create_pool(SETTINGS))))
