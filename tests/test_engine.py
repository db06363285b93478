"""The worker's edges: shutdown mid-task, and jobs arq gives up on before our boundary runs."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import orjson
from arq.jobs import serialize_job
from redis.asyncio import Redis

from taskd import queue
from taskd.records import record_key
from taskd.redis_server import RedisServer
from taskd.settings import Settings
from tests.conftest import (
    SECRET,
    Client,
    ClientFactory,
    SettingsFactory,
    WorkerFactory,
    free_port,
)
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


async def test_worker_survives_lost_redis_connections(
    api: Client, settings: Settings, start_worker: WorkerFactory
) -> None:
    [before] = await create_ok(api, {"task_name": "hello", "name": "before"}, block=True)
    assert before["status"] == "success"
    async with Redis.from_url(settings.redis.url) as admin:
        # Every connection but this one: the worker's pool and wake-up channel, the web's too.
        me = await admin.client_id()
        for client in await admin.client_list():
            if int(client["id"]) != me:
                await admin.client_kill_filter(_id=client["id"])
    for name in ("after", "again"):
        [status] = await create_ok(api, {"task_name": "hello", "name": name}, block=True)
        assert status["result"] == f"Hello {name}"


async def test_worker_and_server_outlive_a_redis_restart(
    make_settings: SettingsFactory,
    make_client: ClientFactory,
    start_worker: WorkerFactory,
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis", port=free_port()).start()
    try:
        settings = make_settings(redis={"url": server.url})
        await start_worker(settings)
        client = await make_client(settings)
        [status] = await create_ok(client, {"task_name": "hello", "name": "one"}, block=True)
        assert status["result"] == "Hello one"
        server.stop()
        await asyncio.sleep(1.2)  # the worker polls a dead server meanwhile
        server.start()
        for _ in range(50):  # the web side answers 503 until its connections are back
            response = await client.post(
                "/v1/create",
                data=orjson.dumps(
                    {
                        "secret": SECRET,
                        "block": True,
                        "tasks": {"task_name": "hello", "name": "two"},
                    }
                ),
            )
            if response.status != 503:
                break
            await asyncio.sleep(0.1)
        assert (await response.json())[0]["result"] == "Hello two"
    finally:
        server.stop()
