"""`taskd worker`: Redis clients, the services tasks use, and the engine, for one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from taskd.connections import redis_client
from taskd.heartbeats import Heartbeats
from taskd.keys import Keys
from taskd.queue import Queue
from taskd.records import Records
from taskd.registry import Registry, load_registry
from taskd.settings import Settings
from workers.boundary import Boundary
from workers.engine import Engine
from workers.services import open_services

log = logging.getLogger(__name__)


class Worker:
    """One worker process's engine, from its start to its graceful stop."""

    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = (
            registry
            if registry is not None
            else load_registry(settings.tasks.modules, settings.machines)
        )
        self.engine: Engine | None = None
        self.started = asyncio.Event()
        self._stop_requested = False

    async def run(self) -> None:
        keys = Keys(self.settings.redis.prefix)
        redis = redis_client(self.settings.redis)
        listener = redis_client(self.settings.redis, connections=1, listening=True)
        try:
            async with open_services(self.settings, redis, keys) as services:
                records = Records(redis, keys, self.settings.worker.result_ttl)
                boundary = Boundary(self.settings, self.registry, records, services)
                queue = Queue(redis, keys, self.settings.worker)
                heartbeats = Heartbeats(redis, keys)
                self.engine = Engine(self.settings.worker, boundary, queue, listener, heartbeats)
                self.started.set()
                if self._stop_requested:
                    await self.engine.stop()
                await self.engine.run()
        finally:
            await listener.aclose(close_connection_pool=True)
            await redis.aclose(close_connection_pool=True)

    async def stop(self) -> None:
        """What SIGTERM does: claim nothing more, grace for running tasks, hand back the rest."""
        self._stop_requested = True
        if self.engine is not None:
            await self.engine.stop()


def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then stop gracefully."""
    worker = Worker(settings)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping: set[asyncio.Task[None]] = set()

        def on_signal(name: str) -> None:
            if not stopping:
                log.info("worker: %s: stopping", name)
                stopping.add(loop.create_task(worker.stop()))

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig.name)
        log.info(
            "worker started: %d tasks, max_jobs=%d",
            len(worker.registry.specs),
            settings.worker.max_jobs,
        )
        await worker.run()
        for task in stopping:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())
