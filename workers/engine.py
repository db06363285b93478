"""The worker engine: fill free slots the moment they free, settle every attempt, keep leases.

One loop owns the slots. Each turn is one round trip (`Queue.step`): it settles the attempts
that finished since the last turn and claims queued tasks for the free slots, so a backlog
drains at the speed of the tasks, not of a poll. Idle, the loop sleeps until the wake-up
channel names new tasks; `poll_interval` is only a safety net. A ticker renews the leases of
running tasks and takes back the tasks of dead workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

from redis.asyncio import Redis

from taskd.auth import Accounts
from taskd.callbacks import callback_url
from taskd.connections import REDIS_UNAVAILABLE
from taskd.context import CANCELLED
from taskd.heartbeats import Beat, Heartbeats, new_worker_id
from taskd.jobs import Job
from taskd.logs import TASK_KEY
from taskd.metrics import WorkerMetrics
from taskd.queue import Outcome, Queue
from taskd.settings import WorkerSettings
from workers.boundary import Boundary
from workers.wakeups import listen

log = logging.getLogger(__name__)
RETRY_MIN, RETRY_MAX = 0.05, 2.0
# A stopping worker that cannot reach Redis gives up settling after this long: the leases
# of what it could not settle run out, and those tasks run again elsewhere.
SETTLE_GIVE_UP = 3.0


class Engine:
    def __init__(
        self,
        settings: WorkerSettings,
        boundary: Boundary,
        queue: Queue,
        listener: Redis,
        heartbeats: Heartbeats,
    ) -> None:
        self.settings = settings
        self.id = new_worker_id()
        self.heartbeats = heartbeats
        self.metrics = WorkerMetrics()
        self.metrics.slots.set(settings.max_jobs)
        self.boundary = boundary
        self.queue = queue
        self.listener = listener  # for the wake-up channel: no socket timeout
        self.accounts = Accounts(boundary.settings.accounts)  # their callback keys, once
        self.running: dict[str, tuple[Job, asyncio.Task[None]]] = {}
        self.finished: list[Outcome] = []  # attempts that ended, not settled yet
        self.candidates: list[str] = []  # keys thought queued, claimed first
        self.more = True  # the queue may hold tasks for free slots
        self.changed = asyncio.Event()
        self.stopping = False
        self.handed: list[Job] = []  # interrupted by the shutdown, to hand back

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Until stop() and every attempt has ended: then hand the interrupted ones back."""
        async with self.background(self.listen()), self.background(self.tick_forever()):
            await self.loop()
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            await self.heartbeats.forget(self.id)
        if self.handed:
            with contextlib.suppress(*REDIS_UNAVAILABLE):
                back = await self.queue.hand_back(self.handed)
                log.info("worker: handed %d tasks back to the queue", back)

    async def loop(self) -> None:
        delay = RETRY_MIN
        give_up: float | None = None
        while True:
            self.changed.clear()
            free = 0 if self.stopping else self.settings.max_jobs - len(self.running)
            claiming = free > 0 and self.more
            if self.finished or claiming:
                outcomes, self.finished = self.finished, []
                candidates = self.candidates[:free] if claiming else []
                try:
                    want = self.settings.max_jobs if claiming else 0
                    step = await self.queue.step(outcomes, candidates, want)
                except REDIS_UNAVAILABLE as exc:
                    self.finished = outcomes + self.finished
                    log.warning("worker: redis unavailable (%s); retrying", exc)
                    if self.stopping and not self.running:
                        give_up = give_up or time.monotonic() + SETTLE_GIVE_UP
                        if time.monotonic() > give_up:
                            log.warning("worker: %d attempts left unsettled", len(self.finished))
                            return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
                    continue
                delay = RETRY_MIN
                self.after_settling(outcomes, step.settled)
                for job in step.claimed:
                    self.start(job)
                if claiming:
                    self.candidates = step.candidates
                    self.more = bool(step.candidates)
                    if self.more and len(self.running) < self.settings.max_jobs:
                        continue  # claim the fresh candidates at once
            if self.stopping and not self.running and not self.finished:
                return
            try:
                async with asyncio.timeout(self.settings.poll_interval):
                    await self.changed.wait()
            except TimeoutError:
                self.more = True  # the safety net: look at the queue anyway

    def start(self, job: Job) -> None:
        task = asyncio.create_task(self.attempt(job), name=f"task-{job.key}")
        self.running[job.key] = (job, task)
        self.metrics.slots_busy.set(len(self.running))
        if job.enqueued_ms and job.attempt == 1:
            waited = max(0.0, time.time() - job.enqueued_ms / 1000)
            self.metrics.waited(job.name, waited)

    async def attempt(self, job: Job) -> None:
        TASK_KEY.set(job.key)  # this asyncio task's own context: its log lines carry the key
        started = time.monotonic()
        try:
            outcome = await self.boundary.run(job)
        except asyncio.CancelledError:
            # Ours: aborted (already settled), lease lost (another attempt's now) or shutdown.
            if self.stopping:
                self.handed.append(job)
            return
        finally:
            del self.running[job.key]
            self.metrics.slots_busy.set(len(self.running))
            self.changed.set()
        self.metrics.ran(job.name, time.monotonic() - started)
        self.finished.append(outcome)

    def after_settling(self, outcomes: Sequence[Outcome], settled: Sequence[bytes | None]) -> None:
        for outcome, json in zip(outcomes, settled, strict=True):
            if json is None:
                log.info(
                    "task %s: its lease was gone; this outcome is dropped",
                    outcome.job.key,
                    extra={"task_key": outcome.job.key},
                )
                continue
            self.metrics.settled(outcome.job.name, outcome.status)
            url = callback_url(outcome.job.callbacks, outcome.status)
            account = self.accounts.by_name.get(outcome.job.account)
            if url and account is not None:  # an account no longer configured: nobody to sign
                self.boundary.services.callbacks.send(
                    outcome.job.key, url, json, account.webhook_key
                )

    # -- what arrives from outside ------------------------------------------------------------

    def queued(self, keys: Sequence[str]) -> None:
        """New tasks (or, with no keys, possibly some: after subscribing)."""
        if keys and len(self.candidates) < 4 * self.settings.max_jobs:
            self.candidates.extend(keys)
        self.more = True
        self.changed.set()

    def aborted(self, key: str) -> None:
        self.cancel(key, CANCELLED)

    def cancel(self, key: str, why: str) -> None:
        entry = self.running.get(key)
        if entry is not None and not entry[1].done():
            log.info("task %s: stopping it (%s)", key, why, extra={"task_key": key})
            entry[1].cancel(why)  # the task sees why: only a client's cancel is for good

    async def listen(self) -> None:
        await listen(self.listener, self.queue.keys.wake, self.queued, self.aborted)

    # -- leases -------------------------------------------------------------------------

    async def tick_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except REDIS_UNAVAILABLE as exc:
                log.warning("worker: lease renewal failed (%s)", exc)
            await asyncio.sleep(self.queue.tick)

    async def tick(self) -> None:
        """Renew our leases (stopping what we lost), then take back what dead workers held."""
        held = [job for job, _ in self.running.values()] + [o.job for o in self.finished]
        for key in await self.queue.renew(held):
            self.cancel(key, "lease lost")
        requeued, ended = await self.queue.reap()
        if requeued:
            log.warning("worker: %d tasks of a lost worker queued again", len(requeued))
        for key in ended:
            log.warning("task %s: worker lost too often; ended", key, extra={"task_key": key})
        await self.heartbeats.beat(self.beat())

    def beat(self) -> Beat:
        machines = {
            name: {"ok": machine.reachable, "checked": machine.checked}
            for name, machine in self.boundary.services.machines.items()
            if machine.checked is not None
        }
        return Beat(
            self.id,
            socket.gethostname(),
            list(self.running),
            time.time(),
            machines,
            self.metrics.snapshot(),
        )

    # -- stopping -----------------------------------------------------------------------

    async def stop(self) -> None:
        """Claim nothing more; give running tasks `shutdown_grace` seconds, then stop them."""
        self.stopping = True
        self.changed.set()
        tasks = [task for _, task in self.running.values()]
        if tasks and self.settings.shutdown_grace > 0:
            await asyncio.wait(tasks, timeout=self.settings.shutdown_grace)
        for key in list(self.running):
            self.cancel(key, "shutting down")

    @contextlib.asynccontextmanager
    async def background(self, work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
        task = asyncio.create_task(work)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
