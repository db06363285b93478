"""The worker engine in the test's own process: every task ends once, backlogs drain, leases
hold, shutdowns hand back, prefixes separate, Redis outages and restarts are survived."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis

from taskd.keys import Keys
from taskd.redis_server import RedisServer
from taskd.settings import Settings
from tests.conftest import (
    SECRET,
    ApiFactory,
    Client,
    ClientFactory,
    SettingsFactory,
    WorkerFactory,
    free_port,
)
from tests.helpers import create, create_ok, read_lines

KEYS = Keys()


async def wait_status(client: Client, keys: list[str]) -> list[dict[str, Any]]:
    response = await client.post("/v1/status", data=orjson.dumps({"tasks": keys, "block": True}))
    assert response.status == 200, await response.text()
    return list(await response.json())


async def until_running(client: Client, key: str) -> dict[str, Any]:
    """The task's first status with progress "running" (test.runs reports it on start)."""
    response = await client.get("/v1/status_stream", params={"tasks": key})
    async for line in response.content:
        status = orjson.loads(line)
        status = status[0] if isinstance(status, list) else status
        if status.get("progress") == "running":
            response.close()
            return dict(status)
    raise AssertionError("the stream ended before the task ran")


async def start_run(client: Client, path: Path, seconds: float) -> dict[str, Any]:
    """A test.runs task of `seconds`, once it runs: its status then."""
    definition = {"task_name": "test.runs", "path": str(path), "seconds": seconds}
    [queued] = await create_ok(client, definition)
    return await until_running(client, queued["key"])


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("timeout", "TimeoutError: the task's own timeout"),
        ("cancelled", "CancelledError"),
        ("base", "Interrupt: a BaseException"),
        ("exit", "SystemExit: 3"),
        ("keyboard", "KeyboardInterrupt"),
    ],
)
async def test_whatever_a_task_raises_it_ends_in_error_once(
    api: Client, settings: Settings, kind: str, message: str
) -> None:
    [status] = await create_ok(api, {"task_name": "test.raise", "kind": kind}, block=True)
    assert (status["status"], status["result"]) == ("error", message)
    async with Redis.from_url(settings.redis.url) as redis:
        assert await redis.get(KEYS.pending("demo")) is None  # the pending count went down once
        assert await redis.ttl(KEYS.task(status["key"])) > 0  # and the record expires
        assert await redis.zcard(KEYS.leases) == 0
    # The worker lives on.
    [hello] = await create_ok(api, {"task_name": "hello", "name": kind}, block=True)
    assert hello["result"] == f"Hello {kind}"


async def test_a_backlog_drains_without_the_safety_net_poll(make_api: ApiFactory) -> None:
    api = await make_api(
        server={"max_block_seconds": 50},
        worker={"poll_interval": 3600, "max_jobs": 10},
        accounts={"demo": {"max_pending": 2000, "max_tasks_per_request": 100}},
    )
    keys: list[str] = []
    for batch in range(10):
        statuses = await create_ok(
            api, [{"task_name": "hello", "name": f"{batch}.{i}"} for i in range(100)]
        )
        keys += [s["key"] for s in statuses]
    done = await wait_status(api, keys)
    assert [s["status"] for s in done] == ["success"] * 1000
    assert done[999]["result"] == "Hello 9.99"


async def test_an_unreadable_job_ends_in_error(
    idle_api: Client, settings: Settings, start_worker: WorkerFactory
) -> None:
    [queued] = await create_ok(idle_api, {"task_name": "hello", "name": "x"})
    async with Redis.from_url(settings.redis.url) as redis:
        await redis.hset(KEYS.task(queued["key"]), "job", b"not json")
        [other] = await create_ok(idle_api, {"task_name": "hello", "name": "y"})
        job = orjson.loads(await redis.hget(KEYS.task(other["key"]), "job"))
        await redis.hset(KEYS.task(other["key"]), "job", orjson.dumps({**job, "f": "vanished"}))
        await start_worker(settings)
        first, second = await wait_status(idle_api, [queued["key"], other["key"]])
        assert first["status"] == second["status"] == "error"
        assert first["result"] == "cannot read the job: unable to deserialize job"
        assert second["result"] == "unknown task: 'vanished'"
        assert await redis.get(KEYS.pending("demo")) is None


async def test_a_task_longer_than_its_lease_runs_once(make_api: ApiFactory, tmp_path: Path) -> None:
    api = await make_api(worker={"lease": 1.2})
    runs = tmp_path / "runs"
    definition = {"task_name": "test.runs", "path": str(runs), "seconds": 3.5}
    [status] = await create_ok(api, definition, block=True)
    assert (status["status"], status["result"]) == ("success", 1)


async def test_shutdown_hands_running_tasks_back_at_once(
    idle_api: Client, make_settings: SettingsFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    # A long lease: only the hand-back can explain a quick second run.
    settings = make_settings(worker={"lease": 300, "shutdown_grace": 0.2})
    first = await start_worker(settings)
    started = await start_run(idle_api, tmp_path / "runs", 0.5)
    await first.stop()
    await start_worker(settings)
    [final] = await wait_status(idle_api, [started["key"]])
    assert (final["status"], final["result"]) == ("success", 2)
    assert final["events"]["started"] > started["events"]["started"]


async def test_a_task_finishing_within_the_grace_is_not_handed_back(
    idle_api: Client, make_settings: SettingsFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    settings = make_settings(worker={"shutdown_grace": 5})
    worker = await start_worker(settings)
    queued = await start_run(idle_api, tmp_path / "runs", 0.3)
    await worker.stop()
    [final] = await wait_status(idle_api, [queued["key"]])
    assert (final["status"], final["result"]) == ("success", 1)


async def test_a_stopping_worker_claims_nothing_more(
    idle_api: Client, make_settings: SettingsFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    settings = make_settings(worker={"shutdown_grace": 5, "max_jobs": 1})
    worker = await start_worker(settings)
    running = await start_run(idle_api, tmp_path / "a", 0.3)
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0)
    [waiting] = await create_ok(idle_api, {"task_name": "hello", "name": "later"})
    await stopping
    [first, second] = await wait_status(idle_api, [running["key"], waiting["key"]])
    assert first["status"] == "success"
    assert second["status"] == "queued"


async def test_two_prefixes_share_one_redis(
    make_settings: SettingsFactory, make_client: ClientFactory, start_worker: WorkerFactory
) -> None:
    one = make_settings(redis={"prefix": "one"})
    two = make_settings(redis={"prefix": "two"})
    client_one, client_two = await make_client(one), await make_client(two)
    await start_worker(one)
    [done] = await create_ok(client_one, {"task_name": "hello", "name": "one"}, block=True)
    [waiting] = await create_ok(client_two, {"task_name": "hello", "name": "two"})
    assert done["status"] == "success"
    # Neither sees the other's task.
    response = await client_two.get("/v1/status", params={"tasks": done["key"]})
    assert response.status == 404
    response = await client_one.get("/v1/status", params={"tasks": waiting["key"]})
    assert response.status == 404
    [still] = await wait_status(client_two, [waiting["key"]])
    assert still["status"] == "queued"  # no worker of `two` runs: one's worker took nothing
    async with Redis.from_url(one.redis.url) as redis:
        names = [k.decode() for k in await redis.keys("*")]
    assert names
    assert all(n.startswith(("one:", "two:")) for n in names), names
    assert {"one:queue", "two:queue"} & set(names) == {"two:queue"}


async def test_an_arq_application_on_the_same_redis_never_meets_taskd(
    api: Client, settings: Settings
) -> None:
    async with Redis.from_url(settings.redis.url) as redis:
        arq = ArqRedis(connection_pool=redis.connection_pool)
        job = await arq.enqueue_job("their_function", 1)
        assert job is not None
        [status] = await create_ok(api, {"task_name": "hello", "name": "x"}, block=True)
        assert status["status"] == "success"
        # Their job is still waiting in their queue; ours never went there.
        assert await redis.zrange("arq:queue", 0, -1) == [job.job_id.encode()]


async def test_worker_survives_lost_redis_connections(api: Client, settings: Settings) -> None:
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


@pytest.fixture
def private_redis(tmp_path: Path) -> Any:
    """A redis-server with AOF on, as the production recommendation has it."""
    server = RedisServer(tmp_path / "redis", port=free_port(), persist=True).start()
    yield server
    server.stop()


async def until_answered(client: Client, body: dict[str, Any]) -> Any:
    while True:
        response = await client.post("/v1/create", data=orjson.dumps(body))
        if response.status != 503:
            return response
        await asyncio.sleep(0.1)


async def test_a_task_running_while_redis_restarts_still_ends(
    make_settings: SettingsFactory,
    make_client: ClientFactory,
    start_worker: WorkerFactory,
    private_redis: RedisServer,
    tmp_path: Path,
) -> None:
    settings = make_settings(redis={"url": private_redis.url})
    await start_worker(settings)
    client = await make_client(settings)
    definition = {"task_name": "test.runs", "path": str(tmp_path / "runs"), "seconds": 1}
    [queued] = await create_ok(client, definition)
    await until_running(client, queued["key"])
    private_redis.stop()  # the task finishes while Redis is away
    await asyncio.sleep(1.5)
    private_redis.start()
    async with asyncio.timeout(30):
        while True:
            response = await client.get("/v1/status", params={"tasks": queued["key"]})
            if response.status == 200 and (await response.json())[0]["status"] == "success":
                break
            await asyncio.sleep(0.1)
    assert (await response.json())[0]["result"] == 1
    async with Redis.from_url(settings.redis.url) as redis:
        assert await redis.get(KEYS.pending("demo")) is None


async def test_a_redis_restart_with_aof_loses_no_record_and_no_queued_task(
    make_settings: SettingsFactory,
    make_client: ClientFactory,
    start_worker: WorkerFactory,
    private_redis: RedisServer,
) -> None:
    settings = make_settings(redis={"url": private_redis.url})
    client = await make_client(settings)
    await start_worker(settings)
    [done] = await create_ok(client, {"task_name": "hello", "name": "before"}, block=True)
    worker_less = make_settings(redis={"url": private_redis.url, "prefix": "later"})
    later = await make_client(worker_less)
    queued = await create_ok(later, [{"task_name": "hello", "name": str(i)} for i in range(20)])
    private_redis.stop()
    private_redis.start()
    body = {"secret": SECRET, "tasks": {"task_name": "hello", "name": "after"}, "block": True}
    async with asyncio.timeout(30):
        response = await until_answered(client, body)
    assert (await response.json())[0]["result"] == "Hello after"
    [again] = await wait_status(client, [done["key"]])
    assert again == done
    await start_worker(worker_less)
    finished = await wait_status(later, [s["key"] for s in queued])
    assert [s["result"] for s in finished] == [f"Hello {i}" for i in range(20)]


async def test_while_redis_is_down_requests_get_503_json_and_recover(
    make_settings: SettingsFactory,
    make_client: ClientFactory,
    start_worker: WorkerFactory,
    private_redis: RedisServer,
) -> None:
    settings = make_settings(redis={"url": private_redis.url})
    await start_worker(settings)
    client = await make_client(settings)
    [done] = await create_ok(client, {"task_name": "hello", "name": "one"}, block=True)
    private_redis.stop()
    requests = [
        client.post(
            "/v1/create",
            data=orjson.dumps({"secret": SECRET, "tasks": {"task_name": "hello", "name": "x"}}),
        ),
        client.get("/v1/status", params={"tasks": done["key"]}),
        client.get("/v1/status_stream", params={"tasks": done["key"]}),
        client.get("/v1/status", params={"tasks": done["key"], "block": "true"}),
    ]
    for request in requests:
        async with asyncio.timeout(5):  # the contract: an answer within 5 s, never a hang
            response = await request
        assert response.status == 503
        assert response.headers["Retry-After"]
        assert (await response.json())["status"] == "error"
    private_redis.start()
    body = {"secret": SECRET, "tasks": {"task_name": "hello", "name": "two"}, "block": True}
    async with asyncio.timeout(30):
        response = await until_answered(client, body)
    assert (await response.json())[0]["result"] == "Hello two"
    lines = await read_lines(await client.get("/v1/status_stream", params={"tasks": done["key"]}))
    assert lines == [[done]]


async def test_a_create_while_redis_is_down_is_not_half_stored(
    make_settings: SettingsFactory, make_client: ClientFactory, private_redis: RedisServer
) -> None:
    settings = make_settings(redis={"url": private_redis.url})
    client = await make_client(settings)
    private_redis.stop()
    response = await create(client, {"task_name": "hello", "name": "x"})
    assert response.status == 503
    private_redis.start()
    async with Redis.from_url(settings.redis.url) as redis:
        assert await redis.keys("*") == []
