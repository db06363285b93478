"""Redis clients built from settings, shared by the web app and the workers."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskd.settings import RedisSettings, SettingsError

# What "Redis cannot be reached right now" looks like: retry or answer 503, never crash.
# Raw socket errors count too where we hold a connection ourselves (hub, worker loops).
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)
REDIS_UNAVAILABLE = (*REDIS_ERRORS, OSError)


class WaitingPool(ConnectionPool):
    """At most `max_connections` connections; a caller beyond them waits its turn, in order.

    Not redis-py's BlockingConnectionPool: its waiters re-check an asyncio.Condition, and a
    task that just gave a connection back takes it again before the woken waiter runs. With
    a few tasks busy (a worker's tasks reporting progress), a waiter (the engine's settle, a
    lease renewal, a request on serve's one connection) got none for 20 s and more
    (tests/test_redis_pool.py). A semaphore serves waiters first come, first served, and
    passes a cancelled waiter's turn on.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = asyncio.Semaphore(self.max_connections)
        self._holding: set[AbstractConnection] = set()

    async def get_connection(self, *args: Any, **options: Any) -> AbstractConnection:
        await self._slots.acquire()
        try:
            connection: AbstractConnection = await super().get_connection()
        except BaseException:
            self._slots.release()
            raise
        self._holding.add(connection)
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        try:
            await super().release(connection)
        finally:
            if connection in self._holding:  # a connection's slot is given back once
                self._holding.discard(connection)
                self._slots.release()


class WaitingSentinelPool(SentinelConnectionPool, WaitingPool):
    """Connections to whichever server the Sentinels name master, waiting when all are busy."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        for sentinel in self.sentinel_manager.sentinels:  # its own clients, one per Sentinel
            await sentinel.aclose()


def require_redis(settings: RedisSettings) -> None:
    if not settings.configured:
        raise SettingsError(
            "redis.url is empty: set it (or TASKD_REDIS_URL, or redis.sentinels), or use "
            "`taskd run`, which starts its own redis-server"
        )


# Commands never block inside Redis, so an answer slower than this means Redis is gone:
# requests then get a 503 within seconds instead of hanging.
CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 3.0


def redis_client(
    settings: RedisSettings, *, connections: int | None = None, listening: bool = False
) -> Redis:
    """A client whose pool of `connections` (default `max_connections`) waits for a free
    connection instead of opening without bound.

    `listening`: for pub/sub connections, which are silent while nothing happens (no read
    timeout; TCP keepalive notices a peer that vanished).
    """
    size = connections or settings.max_connections
    require_redis(settings)
    options: dict[str, object] = {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": None if listening else COMMAND_TIMEOUT,
    }
    if not settings.url.startswith("unix:"):
        options["socket_keepalive"] = True
    if settings.sentinels:
        addresses = [(h, int(p)) for h, _, p in (a.rpartition(":") for a in settings.sentinels)]
        pool: ConnectionPool = WaitingSentinelPool(  # type: ignore[no-untyped-call]
            settings.sentinel_master,
            Sentinel(addresses),  # type: ignore[no-untyped-call]
            max_connections=size,
            **options,
        )
        return Redis(connection_pool=pool)
    pool = WaitingPool.from_url(settings.url, max_connections=size, **options)
    return Redis(connection_pool=pool)
