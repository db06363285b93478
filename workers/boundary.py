"""The one error boundary: whatever a task does, its record ends in `success` or `error`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from taskd.callbacks import callback_url
from taskd.context import TaskContext
from taskd.errors import TaskFailed
from taskd.records import Records
from taskd.registry import Registry
from taskd.settings import Settings
from workers.services import Services

log = logging.getLogger(__name__)
BOUNDARY = "taskd.boundary"
SERVICES = "taskd.services"


@dataclass(frozen=True)
class Boundary:
    settings: Settings
    registry: Registry
    records: Records


def one_line(exc: BaseException) -> str:
    """A message for a client: the exception's first line, never a traceback."""
    text = str(exc).strip().splitlines()
    if isinstance(exc, TaskFailed):
        return text[0] if text else "failed"
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


async def run_task(
    ctx: dict[str, Any],
    key: str,
    account: str,
    name: str,
    params: dict[str, Any],
    callbacks: dict[str, str] | None = None,
) -> None:
    """The arq job function behind every named task."""
    boundary: Boundary = ctx[BOUNDARY]
    services: Services = ctx[SERVICES]
    records = boundary.records
    if not await records.start(key):
        return  # cancelled while queued
    context = TaskContext(
        key,
        name,
        partial(records.progress, key),
        boundary.settings.machines,
        services.storage,
        services.fetcher,
    )
    try:
        outcome, body = await outcome_of(boundary, context, params)
    except asyncio.CancelledError:
        # An abort (the record already says "cancelled") or a shutdown (arq retries).
        await discard_files(services, context)
        raise
    log.info("task %s (%s): %s", key, name, outcome)
    files = context.files if outcome == "success" else []
    if outcome != "success":
        await discard_files(services, context)
    if await records.finish(key, account, outcome, body, files):
        url = callback_url(callbacks or {}, outcome)
        if url:
            snapshot = (await records.read([key]))[0]
            if snapshot is not None:
                services.callbacks.send(key, url, snapshot.json)


async def outcome_of(
    boundary: Boundary, context: TaskContext, params: dict[str, Any]
) -> tuple[str, bytes]:
    """Run the task under job_timeout: ("success", result) or ("error", message), as JSON."""
    timeout = boundary.settings.worker.job_timeout
    try:
        spec = boundary.registry[context.name]
        async with asyncio.timeout(timeout) as deadline:
            result = await spec.run(context, spec.params.model_validate(params))
        return "success", orjson.dumps(result)
    except TimeoutError:
        if not deadline.expired():
            raise
        return "error", orjson.dumps(f"timeout after {timeout:g} s")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if not isinstance(exc, TaskFailed):
            log.exception("task %s (%s) failed", context.key, context.name)
        return "error", orjson.dumps(one_line(exc))


async def discard_files(services: Services, context: TaskContext) -> None:
    """Files of a task that did not succeed are never listed: don't keep them either."""
    if context.files:
        with contextlib.suppress(Exception):
            await asyncio.shield(services.storage.delete(context.key))
