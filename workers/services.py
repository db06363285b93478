"""What tasks use beyond Redis, opened when a worker starts and closed when it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis

from taskd.callbacks import Callbacks
from taskd.connections import REDIS_ERRORS
from taskd.fetch import Fetcher
from taskd.keys import Keys
from taskd.remote.machines import Machines
from taskd.settings import Settings
from taskd.storage import Storage, open_storage, sweep

log = logging.getLogger(__name__)
SWEEP_INTERVAL = 60.0


@dataclass(frozen=True)
class Services:
    storage: Storage
    fetcher: Fetcher
    callbacks: Callbacks
    machines: Machines


@contextlib.asynccontextmanager
async def open_services(settings: Settings, redis: Redis, keys: Keys) -> AsyncIterator[Services]:
    async with (
        open_storage(settings.storage, redis, keys) as storage,
        Fetcher(settings.fetch) as fetcher,
    ):
        callbacks = Callbacks(fetcher)
        machines = Machines(settings.machines)
        sweeper = asyncio.create_task(sweep_forever(redis, keys, storage), name="taskd-sweeper")
        try:
            yield Services(storage, fetcher, callbacks, machines)
        finally:
            await machines.close()
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await callbacks.close()


async def sweep_forever(redis: Redis, keys: Keys, storage: Storage) -> None:
    """Delete files whose records expired; any worker may do it, each task's files once."""
    while True:
        try:
            swept = await sweep(redis, keys, storage)
            if swept:
                log.info("deleted the files of %d expired tasks", swept)
        except REDIS_ERRORS as exc:
            log.warning("file sweep skipped: %s", exc)
        await asyncio.sleep(SWEEP_INTERVAL)
