"""The one error boundary: whatever a task does, its attempt ends in an Outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import orjson

from taskd.connections import REDIS_ERRORS
from taskd.context import ProgressReporter, TaskContext
from taskd.errors import TaskFailed
from taskd.jobs import Job
from taskd.queue import Outcome
from taskd.records import Records
from taskd.registry import Registry
from taskd.settings import Settings
from workers.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Boundary:
    settings: Settings
    registry: Registry
    records: Records
    services: Services

    async def run(self, job: Job) -> Outcome:
        """Run one attempt under job_timeout. Only a cancellation by the engine propagates
        (abort, lost lease, shutdown); anything else the task raises is an `error`."""
        context = TaskContext(
            job.key,
            job.name,
            job.attempt,
            self.reporter(job),
            self.services.machines,
            self.services.storage,
            self.services.fetcher,
            self.records,
        )
        try:
            status, result = await self.outcome_of(job, context)
        except asyncio.CancelledError:
            await self.discard_files(context)
            raise
        if status != "success":
            await self.discard_files(context)
        return Outcome(job, status, result, context.files if status == "success" else ())

    async def outcome_of(self, job: Job, context: TaskContext) -> tuple[str, bytes]:
        timeout = self.settings.worker.job_timeout
        deadline: asyncio.Timeout | None = None
        try:
            if job.unreadable is not None:
                raise TaskFailed(f"cannot read the job: {job.unreadable}")
            if job.name not in self.registry:
                raise TaskFailed(f"unknown task: {job.name!r}")
            spec = self.registry[job.name]
            params = self.registry.validate(job.name, job.params)
            async with asyncio.timeout(timeout if spec.bounded else None) as deadline:
                result = await spec.run(context, params)
            return "success", orjson.dumps(result)
        except TimeoutError as exc:
            if deadline is not None and deadline.expired():
                return "error", orjson.dumps(f"timeout after {timeout:g} s")
            return "error", self.failure(job, exc)
        except asyncio.CancelledError as exc:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the engine's own cancellation
            return "error", self.failure(job, exc)  # the task's own CancelledError
        except BaseException as exc:  # every task ends: SystemExit and the like included
            return "error", self.failure(job, exc)

    def failure(self, job: Job, exc: BaseException) -> bytes:
        if not isinstance(exc, TaskFailed):
            log.error("task %s (%s) failed", job.key, job.name, exc_info=exc)
        return orjson.dumps(one_line(exc))

    def reporter(self, job: Job) -> ProgressReporter:
        async def report(value: object) -> None:
            try:
                await self.records.progress(job.key, job.attempt, value)
            except REDIS_ERRORS as exc:  # progress is informative: the task goes on
                log.warning("task %s: progress not published: %s", job.key, exc)

        return report

    async def discard_files(self, context: TaskContext) -> None:
        """Files of a task that did not succeed are never listed: don't keep them either."""
        if context.files:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.services.storage.delete(context.key))


def one_line(exc: BaseException) -> str:
    """A message for a client: the exception's first line, never a traceback."""
    text = str(exc).strip().splitlines()
    if isinstance(exc, TaskFailed):
        return text[0] if text else "failed"
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
