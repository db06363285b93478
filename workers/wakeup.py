"""An arq worker that sleeps until woken: no polling delay, no CPU while idle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

import orjson
from arq.constants import abort_jobs_ss, in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker

from taskd.connections import REDIS_UNAVAILABLE
from taskd.queue import WAKE_CHANNEL
from taskd.records import Records

log = logging.getLogger(__name__)
REDIS_RETRY_SECONDS = 0.5

# One round trip per poll (arq spends one on reading the queue, four per job to claim it and
# one on aborts): read the due jobs, claim as many as there are free slots (a job is ours if
# nobody holds it), and list the aborts. The in-progress keys are derived from the ids, which
# standalone Redis and Sentinel allow (arq does not support Redis Cluster).
# KEYS: queue, aborts. ARGV: now_ms, in-progress ttl ms, in-progress prefix, free slots, read limit.
POLL = """
local claimed = {}
local free = tonumber(ARGV[4])
if free > 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1],
    'WITHSCORES', 'LIMIT', 0, ARGV[5])
  for i = 1, #due, 2 do
    local held = ARGV[3] .. due[i]
    if redis.call('EXISTS', held) == 0 then
      redis.call('PSETEX', held, ARGV[2], '1')
      claimed[#claimed + 1] = due[i]
      claimed[#claimed + 1] = due[i + 1]
      free = free - 1
      if free == 0 then break end
    end
  end
end
return {claimed, redis.call('ZRANGE', KEYS[2], 0, -1)}
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
        self.poll = self.pool.register_script(POLL)

    async def main(self) -> None:
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        async with self.wake_listener():
            while True:
                self.wake.clear()
                try:
                    await self._poll_iteration()
                except REDIS_UNAVAILABLE as exc:
                    # Redis restarting or failing over: keep trying, don't die.
                    log.warning("worker: redis unavailable (%s); retrying", exc)
                    await asyncio.sleep(REDIS_RETRY_SECONDS)
                    continue
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
            except REDIS_UNAVAILABLE as exc:
                log.warning("wake-up channel lost (%s); polling until it is back", exc)
                await asyncio.sleep(1)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _poll_iteration(self) -> None:
        """arq's poll (claim due jobs, honour aborts, reap, heartbeat) in one round trip."""
        free = self.max_jobs - self.job_counter if self.allow_pick_jobs else 0
        claimed, aborts = await self.poll(
            keys=[self.queue_name, abort_jobs_ss],
            args=[
                timestamp_ms(),
                int(self.in_progress_timeout_s * 1000),
                in_progress_key_prefix,
                max(free, 0),
                self.queue_read_limit,
            ],
        )
        for job_id, score in zip(claimed[::2], claimed[1::2], strict=True):
            await self.sem.acquire()
            self.job_counter += 1
            task = self.loop.create_task(self.run_job(job_id.decode(), int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id.decode()] = task
        await self.abort([a.decode() for a in aborts])
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                task.result()  # surfaces errors of run_job itself
        await self.heart_beat()

    async def abort(self, job_ids: list[str]) -> None:
        """Cancel the aborted jobs running here; the others belong to other workers."""
        mine = [job_id for job_id in job_ids if job_id in self.job_tasks]
        for job_id in mine:
            self.job_tasks[job_id].cancel()
        if mine:
            self.aborting_tasks.update(mine)
            await self.pool.zrem(abort_jobs_ss, *mine)

    async def close(self) -> None:
        """arq's close, with redis-py 5's aclose (its close() is deprecated)."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            await self.pool.delete(self.health_check_key)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
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
