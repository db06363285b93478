"""The workers' wake-up channel: queued task keys and aborts, pushed instead of polled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from redis.asyncio import Redis

from taskd.connections import REDIS_UNAVAILABLE

log = logging.getLogger(__name__)
ABORT = b"abort "
RETRY_SECONDS = 0.5


async def listen(
    redis: Redis,
    channel: str,
    queued: Callable[[Sequence[str]], None],
    aborted: Callable[[str], None],
) -> None:
    """Forever: call `queued` with the keys of new tasks (an empty list after (re)subscribing,
    for whatever was queued while nobody listened) and `aborted` with cancelled running ones.

    `redis` must have no socket timeout: the channel is silent while nothing happens.
    """
    while True:
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(channel)
            queued([])
            async for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                data: bytes = message["data"]
                if data.startswith(ABORT):
                    aborted(data[len(ABORT) :].decode())
                else:
                    queued(data.decode().split())
        except REDIS_UNAVAILABLE as exc:
            log.warning("worker: wake-up channel lost (%s); retrying", exc)
            await asyncio.sleep(RETRY_SECONDS)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
