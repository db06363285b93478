"""The worker's edges: shutdown mid-task, and jobs arq gives up on before our boundary runs."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import orjson
from arq.jobs import serialize_job
from redis.asyncio import Redis

from taskd import queue
from taskd.records import record_key
from taskd.settings import Settings
from tests.conftest import Client, WorkerFactory
from tests.helpers import create_ok


async def test_a_task_interrupted_by_shutdown_runs_again_elsewhere(
    idle_api: Client, settings: Settings, start_worker: WorkerFactory
) -> None:
    first = await start_worker(settings)
    [queued] = await create_ok(idle_api, {"task_name": "sleep", "seconds": 0.6, "steps": 3})
    response = await idle_api.get("/v1/status_stream", params={"tasks": queued["key"]})
    await response.content.readline()
    while orjson.loads(await response.content.readline()).get("progress", 0) < 30:
        pass
    first.handle_sig(signal.SIGTERM)  # what `taskd worker` does on SIGTERM
    assert first.main_task is not None
    with contextlib.suppress(asyncio.CancelledError):
        await first.main_task
    await start_worker(settings)
    lines = [orjson.loads(line) async for line in response.content if line.strip()]
    final = lines[-1]
    assert (final["status"], final["result"], final["progress"]) == ("success", 0.6, 100)


async def test_a_job_arq_cannot_run_ends_in_error(
    idle_api: Client, settings: Settings, start_worker: WorkerFactory
) -> None:
    [queued] = await create_ok(idle_api, {"task_name": "hello", "name": "x"})
    key = queued["key"]
    # Replace the job with one naming a function no worker has.
    async with Redis.from_url(settings.redis.url) as redis:
        job = serialize_job(
            "vanished", (), {}, None, int(time.time() * 1000), serializer=orjson.dumps
        )
        await redis.set(queue.job_key(key), job)
        await start_worker(settings)
        response = await idle_api.get("/v1/status", params={"tasks": key, "block": "true"})
        [status] = await response.json()
        assert status["status"] == "error"
        assert status["result"] == "function 'vanished' not found"
        assert await redis.ttl(record_key(key)) > 0
        assert await redis.get("taskd:pending:demo") is None
