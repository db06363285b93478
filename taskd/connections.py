"""Redis clients built from settings, shared by the web app and the workers."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskd.settings import RedisSettings, SettingsError

# What "Redis cannot be reached right now" looks like: retry or answer 503, never crash.
# Raw socket errors count too where we hold a connection ourselves (hub, worker loops).
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)
REDIS_UNAVAILABLE = (*REDIS_ERRORS, OSError)


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
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
        pool: BlockingConnectionPool = BlockingSentinelPool(  # type: ignore[no-untyped-call]
            settings.sentinel_master,
            Sentinel(addresses),  # type: ignore[no-untyped-call]
            max_connections=size,
            timeout=None,
            **options,
        )
        return Redis(connection_pool=pool)
    pool = BlockingConnectionPool.from_url(
        settings.url, max_connections=size, timeout=None, **options
    )
    return Redis(connection_pool=pool)
