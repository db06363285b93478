"""GET /v1/health and GET /metrics: Redis, workers by heartbeat, queue, storage, machines."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from taskd.redis_server import RedisServer
from tests.conftest import ApiFactory, Client, ClientFactory, SettingsFactory, free_port
from tests.helpers import create_ok
from tests.remote_servers import Slurm, Sshd

FAST_BEATS = {"lease": 0.6}  # a heartbeat every 0.1 s


async def health(client: Client) -> tuple[int, dict[str, Any]]:
    response = await client.get("/v1/health")
    return response.status, await response.json()


async def until(client: Client, predicate: Any, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        _, body = await health(client)
        if predicate(body):
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)


async def test_health_lists_living_workers_with_their_running_jobs(make_api: ApiFactory) -> None:
    client = await make_api(worker=FAST_BEATS)
    [task] = await create_ok(client, {"task_name": "sleep", "seconds": 3, "steps": 1})
    body = await until(client, lambda b: b["workers"] and b["workers"][0]["jobs"])
    assert body["status"] == "ok"
    assert body["redis"]["ok"] is True
    assert isinstance(body["redis"]["latency_ms"], float)
    [worker] = body["workers"]
    assert set(worker) == {"id", "host", "jobs", "last_seen"}
    assert worker["jobs"] == [task["key"]]
    assert datetime.fromisoformat(worker["last_seen"]).tzinfo is not None
    assert body["queue"] == 0
    assert body["storage"] == {"ok": True, "backend": "local"}
    assert body["machines"] == {}


async def test_health_is_degraded_without_a_worker_and_counts_the_queue(idle_api: Client) -> None:
    await create_ok(idle_api, [{"task_name": "hello", "name": str(i)} for i in range(3)])
    status, body = await health(idle_api)
    assert status == 200
    assert body["status"] == "degraded"
    assert body["workers"] == []
    assert body["queue"] == 3


async def test_a_stopped_worker_leaves_the_health_list(
    make_settings: SettingsFactory, start_worker: Any, make_client: ClientFactory
) -> None:
    settings = make_settings(worker=FAST_BEATS)
    worker = await start_worker(settings)
    client = await make_client(settings)
    await until(client, lambda b: len(b["workers"]) == 1)
    await worker.stop()
    body = await until(client, lambda b: not b["workers"])
    assert body["status"] == "degraded"


async def test_health_is_a_503_when_redis_is_down(
    make_settings: SettingsFactory, make_client: ClientFactory, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path / "own-redis", port=free_port()).start()
    try:
        client = await make_client(make_settings(redis={"url": redis.url}))
        assert (await health(client))[0] == 200
    finally:
        redis.stop()
    status, body = await health(client)
    assert status == 503
    assert body["status"] == "down"
    assert body["redis"] == {"ok": False, "latency_ms": None}


@pytest.mark.remote
async def test_health_tells_each_machines_last_known_reachability(
    make_api: ApiFactory, remote: tuple[Sshd, Slurm]
) -> None:
    sshd, _ = remote
    client = await make_api(
        worker=FAST_BEATS,
        machines={
            "up": sshd.machine(),
            "down": sshd.machine(port=free_port()),
            "idle": sshd.machine(),
        },
    )
    await create_ok(
        client,
        [
            {"task_name": "remote.run", "machine": "up", "command": ["true"]},
            {"task_name": "remote.run", "machine": "down", "command": ["true"]},
        ],
        block=True,
    )
    body = await until(client, lambda b: b["machines"]["down"]["ok"] is False)
    assert body["machines"]["up"]["ok"] is True
    assert datetime.fromisoformat(body["machines"]["up"]["checked"]).tzinfo is not None
    assert body["machines"]["idle"] == {"ok": None, "checked": None}
    assert body["status"] == "degraded"  # a machine is unreachable


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict[Any, float], sample: str, **labels: str) -> float:
    """The sample whose labels include `labels` (summed over the others)."""
    return sum(v for (n, ls), v in found.items() if n == sample and set(labels.items()) <= ls)


async def test_metrics_from_the_server_and_every_worker_in_one_scrape(
    make_api: ApiFactory,
) -> None:
    client = await make_api(worker=FAST_BEATS)
    await create_ok(client, [{"task_name": "hello", "name": "m"}] * 3, block=True)
    deadline = time.monotonic() + 10
    while True:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        found = samples(await response.text())
        if value(found, "taskd_tasks_finished_total", name="hello") == 3:
            break
        assert time.monotonic() < deadline, "the worker's figures never arrived"
        await asyncio.sleep(0.05)
    assert value(found, "taskd_tasks_created_total", name="hello") == 3
    assert value(found, "taskd_http_requests_total", route="/v1/create", code="200") == 1
    assert value(found, "taskd_tasks_finished_total", name="hello", status="success") == 3
    assert value(found, "taskd_task_run_seconds_count", name="hello") == 3
    assert value(found, "taskd_task_queue_wait_seconds_count", name="hello") == 3
    assert value(found, "taskd_worker_slots") > 0
    assert value(found, "taskd_queue_depth") == 0
    workers = {dict(ls)["worker"] for (n, ls) in found if n == "taskd_worker_slots"}
    assert len(workers) == 1


async def test_open_streams_are_counted(make_api: ApiFactory) -> None:
    client = await make_api()
    [task] = await create_ok(client, {"task_name": "sleep", "seconds": 2, "steps": 1})
    stream = await client.get("/v1/status_stream", params={"tasks": task["key"]})
    await stream.content.readline()
    found = samples(await (await client.get("/metrics")).text())
    assert value(found, "taskd_open_streams") == 1
    stream.close()


async def test_a_foreign_heartbeat_breaks_neither_health_nor_metrics(
    idle_api: Client, settings: Any
) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(settings.redis.url)
    try:
        await client.hset("taskd:workers", "odd", b'{"id": "odd", "unknown": 1}')
        now = time.time()
        shape = b'{"id":"w","host":"h","jobs":[],"last_seen":%f,"metrics":[["x"]]}' % now
        await client.hset("taskd:workers", "w", shape)
    finally:
        await client.aclose()
    status, body = await health(idle_api)
    assert status == 200
    assert [w["id"] for w in body["workers"]] == ["w"]
    assert (await idle_api.get("/metrics")).status == 200
