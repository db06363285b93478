"""The Redis pools taskd builds stay usable however many commands are cancelled midway."""

from __future__ import annotations

import asyncio
import random

from taskd.connections import redis_client
from taskd.redis_server import RedisServer
from taskd.settings import RedisSettings


async def test_a_pool_survives_cancelled_commands(redis_server: RedisServer) -> None:
    """Tasks cancelled (some twice, as an abort then a stop) while they wait for or use a
    connection. redis-py's BlockingConnectionPool failed this here: after some rounds a
    PING waited forever with every connection free."""
    redis = redis_client(RedisSettings(url=redis_server.url, max_connections=4))
    rng = random.Random(7)

    async def work(until: asyncio.Event) -> None:
        # Cancelled twice, a command may swallow one CancelledError: the task then goes on.
        while not until.is_set():
            await redis.hset("taskd:pool-test", "f", "v" * 100)  # type: ignore[misc]
            await redis.get("taskd:pool-test-x")

    try:
        for _ in range(60):
            until = asyncio.Event()
            tasks = [asyncio.create_task(work(until)) for _ in range(8)]
            await asyncio.sleep(rng.random() * 0.01)
            for task in tasks:
                task.cancel()
                if rng.random() < 0.5:
                    await asyncio.sleep(0)
                    task.cancel()
            await asyncio.wait(tasks, timeout=0.2)
            until.set()
            async with asyncio.timeout(10):  # every task ends: none waits on the pool forever
                await asyncio.gather(*tasks, return_exceptions=True)
        async with asyncio.timeout(5):
            assert await redis.ping()
        # All four connections are still to be had at once.
        async with asyncio.timeout(5):
            await asyncio.gather(*(redis.get("taskd:pool-test-x") for _ in range(16)))
    finally:
        await redis.aclose(close_connection_pool=True)


async def test_a_waiter_gets_its_turn_while_others_keep_the_pool_busy(
    redis_server: RedisServer,
) -> None:
    """Eight tasks issue commands without pause on four connections (a worker's tasks
    reporting progress), and a ninth caller (the engine's settle, a lease renewal) still gets
    a connection. With redis-py's BlockingConnectionPool its PING never got one here: the
    busy tasks took every freed connection first. The bound only stops a hung test."""
    redis = redis_client(RedisSettings(url=redis_server.url, max_connections=4))
    stop = asyncio.Event()

    async def busy() -> None:
        while not stop.is_set():
            await redis.get("taskd:pool-test-x")

    tasks = [asyncio.create_task(busy()) for _ in range(8)]
    try:
        await asyncio.sleep(0.1)
        async with asyncio.timeout(30):
            for _ in range(100):
                assert await redis.ping()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await redis.aclose(close_connection_pool=True)
