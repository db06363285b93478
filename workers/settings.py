"""WorkerSettings: the arq worker options derived from taskd settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from arq.connections import ArqRedis
from arq.worker import func

from taskd.connections import redis_client
from taskd.queue import JOB_FUNCTION, QUEUE
from taskd.records import Records
from taskd.registry import Registry, load_registry
from taskd.settings import Settings
from workers.boundary import BOUNDARY, SERVICES, Boundary, run_task
from workers.services import open_services
from workers.wakeup import WakeupWorker

log = logging.getLogger(__name__)


def serialize(value: Any) -> bytes:
    # arq serializes exceptions into failed results; str() keeps them JSON.
    return orjson.dumps(value, default=str)


class WorkerSettings:
    """arq's settings class shape, built from taskd settings."""

    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else load_registry(settings.tasks.modules)

    def worker_kwargs(self, pool: ArqRedis, records: Records) -> dict[str, Any]:
        worker = self.settings.worker
        stack = contextlib.AsyncExitStack()

        async def on_startup(ctx: dict[str, Any]) -> None:
            ctx[SERVICES] = await stack.enter_async_context(open_services(self.settings, pool))

        async def on_shutdown(ctx: dict[str, Any]) -> None:
            await stack.aclose()

        return {
            "on_startup": on_startup,
            "on_shutdown": on_shutdown,
            # The boundary enforces job_timeout itself; arq's own limit is only a backstop.
            "functions": [func(run_task, name=JOB_FUNCTION, timeout=worker.job_timeout + 5)],
            "queue_name": QUEUE,
            "redis_pool": pool,
            "max_jobs": worker.max_jobs,
            "poll_delay": worker.poll_interval,
            "keep_result": 0,
            "allow_abort_jobs": True,
            "job_serializer": serialize,
            "job_deserializer": orjson.loads,
            "ctx": {BOUNDARY: Boundary(self.settings, self.registry, records)},
            "records": records,
        }


def build_worker(
    settings: Settings, registry: Registry | None = None, *, handle_signals: bool = False
) -> WakeupWorker:
    redis = redis_client(settings.redis)
    pool = ArqRedis(
        pool_or_conn=redis.connection_pool,
        job_serializer=serialize,
        job_deserializer=orjson.loads,
        default_queue_name=QUEUE,
    )
    records = Records(pool, settings.worker.result_ttl)
    kwargs = WorkerSettings(settings, registry).worker_kwargs(pool, records)
    return WakeupWorker(handle_signals=handle_signals, **kwargs)


def run_worker(settings: Settings) -> None:
    """`taskd worker`: run until SIGINT/SIGTERM; running jobs are left to arq's retry."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = build_worker(settings, handle_signals=True)
    log.info(
        "worker started: %d tasks, max_jobs=%d",
        len(worker.ctx[BOUNDARY].registry.specs),
        settings.worker.max_jobs,
    )
    worker.run()
