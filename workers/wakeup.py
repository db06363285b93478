"""An arq worker that sleeps until woken: no polling delay, no CPU while idle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

import orjson
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskd.queue import WAKE_CHANNEL
from taskd.records import Records

log = logging.getLogger(__name__)

# Claim queued jobs for this worker in one round trip (arq does WATCH/EXISTS/ZSCORE/MULTI per
# job): a job is ours if nobody holds it and it is due. The in-progress keys are derived from
# the ids, which standalone Redis and Sentinel allow (arq does not support Redis Cluster).
CLAIM = """
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local held = ARGV[3] .. id
  if redis.call('EXISTS', held) == 0 then
    local score = redis.call('ZSCORE', KEYS[1], id)
    if score and tonumber(score) <= tonumber(ARGV[1]) then
      redis.call('PSETEX', held, ARGV[2], '1')
      out[#out + 1] = id
      out[#out + 1] = score
    end
  end
end
return out
"""


class WakeupWorker(Worker):
    """arq's Worker, but between polls it waits on Redis pub/sub instead of a fixed sleep.

    A create publishes on `taskd:wake` in the same script that queues the task, and a cancel
    does so for aborts; the worker polls the moment one arrives, when one of its own jobs frees
    a slot while it was full, or after `poll_delay` at the latest (a safety net only).
    """

    def __init__(self, *args: object, records: Records, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.records = records
        self.wake = asyncio.Event()
        self.claim = self.pool.register_script(CLAIM)

    async def main(self) -> None:
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        async with self.wake_listener():
            while True:
                self.wake.clear()
                await self._poll_iteration()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_delay_s):
                        await self.wake.wait()

    @contextlib.asynccontextmanager
    async def wake_listener(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self.listen_for_wakeups(), name="taskd-wakeup")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def listen_for_wakeups(self) -> None:
        while True:
            pubsub = self.pool.pubsub()
            try:
                await pubsub.subscribe(WAKE_CHANNEL)
                self.wake.set()  # anything queued while we were not listening
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        self.wake.set()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("wake-up channel lost (%s); polling until it is back", exc)
                await asyncio.sleep(1)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Claim as many due jobs as there are free slots, at once, and run them."""
        free = self.max_jobs - self.job_counter
        if free <= 0 or not job_ids:
            return
        claimed = await self.claim(
            keys=[self.queue_name],
            args=[
                timestamp_ms(),
                int(self.in_progress_timeout_s * 1000),
                in_progress_key_prefix,
                *job_ids[:free],
            ],
        )
        for job_id, score in zip(claimed[::2], claimed[1::2], strict=True):
            await self.sem.acquire()
            self.job_counter += 1
            task = self.loop.create_task(self.run_job(job_id.decode(), int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id.decode()] = task

    async def close(self) -> None:
        """arq's close, with redis-py 5's aclose (its close() is deprecated)."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        await self.pool.delete(self.health_check_key)
        await self.pool.aclose(close_connection_pool=True)
        self._pool = None

    def _release_sem_dec_counter_on_complete(self) -> None:
        full = self.job_counter >= self.max_jobs
        super()._release_sem_dec_counter_on_complete()
        if full:
            self.wake.set()  # a slot is free: queued tasks may be waiting for it

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        """arq gave up on a job without running our boundary (retries exhausted, expired…)."""
        await super().finish_failed_job(job_id, result_data)
        account = await self.records.owner_of(job_id)
        if account is None:
            return
        reason = orjson.loads(result_data).get("r") if result_data else None
        await self.records.finish(job_id, account, "error", orjson.dumps(str(reason or "failed")))
