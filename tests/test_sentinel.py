"""High availability: taskd finds the master through real Redis Sentinels and follows a failover."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from taskd.redis_server import RedisServer
from tests.conftest import SECRET, ApiFactory, Client, free_port

MASTER = "taskd-master"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer, RedisServer]]:
    master = RedisServer(tmp_path / "master", port=free_port()).start()
    replica = RedisServer(
        tmp_path / "replica",
        port=free_port(),
        options=["--replicaof", "127.0.0.1", str(master.port)],
    ).start()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"sentinel monitor {MASTER} 127.0.0.1 {master.port} 1\n"
        f"sentinel down-after-milliseconds {MASTER} 300\n"
        f"sentinel failover-timeout {MASTER} 2000\n"
    )
    sentinel = RedisServer(
        tmp_path / "sentinel", port=free_port(), config=config, options=["--sentinel"]
    ).start()
    yield master, replica, sentinel
    for server in (sentinel, replica, master):
        server.stop()


async def sentinel_says(sentinel: RedisServer, port: int, replica_known: bool = False) -> None:
    """Wait until the Sentinel names the server on `port` master (and knows its replica)."""
    async with Redis(port=sentinel.port) as client:
        for _ in range(200):
            address = await client.sentinel_get_master_addr_by_name(MASTER)  # type: ignore[no-untyped-call]
            replicas = await client.sentinel_slaves(MASTER)  # type: ignore[no-untyped-call]
            known = not replica_known or bool(replicas)
            if address and int(address[1]) == port and known:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"the sentinel never named port {port} master")


async def hello(client: Client, name: str) -> str:
    body = {"secret": SECRET, "block": True, "tasks": {"task_name": "hello", "name": name}}
    for _ in range(100):  # 503 while the old master's connections fail over
        response = await client.post("/v1/create", data=orjson.dumps(body))
        if response.status != 503:
            break
        await asyncio.sleep(0.1)
    [status] = await response.json()
    return str(status["result"])


async def test_sentinel_master_and_failover(
    cluster: tuple[RedisServer, RedisServer, RedisServer], make_api: ApiFactory
) -> None:
    master, replica, sentinel = cluster
    await sentinel_says(sentinel, master.port, replica_known=True)
    client = await make_api(
        redis={"url": "", "sentinels": [f"127.0.0.1:{sentinel.port}"], "sentinel_master": MASTER}
    )
    assert await hello(client, "primary") == "Hello primary"
    master.stop()
    await sentinel_says(sentinel, replica.port)
    assert await hello(client, "promoted") == "Hello promoted"
