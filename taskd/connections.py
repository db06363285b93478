"""Redis clients built from settings, shared by the web app and the workers."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from taskd.settings import RedisSettings, SettingsError


def redis_url(settings: RedisSettings) -> str:
    if not settings.url:
        raise SettingsError(
            "redis.url is empty: set it (or TASKD_REDIS_URL), or use `taskd run`, "
            "which starts its own redis-server"
        )
    return settings.url


def redis_client(settings: RedisSettings) -> Redis:
    """A client whose pool waits for a free connection instead of opening without bound."""
    pool = BlockingConnectionPool.from_url(
        redis_url(settings), max_connections=settings.max_connections, timeout=None
    )
    return Redis(connection_pool=pool)
