"""The one error boundary: whatever a task does, its record ends in `success` or `error`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from taskd.context import TaskContext
from taskd.records import Records
from taskd.registry import Registry
from taskd.settings import Settings
from taskd.tasks import TaskFailed

log = logging.getLogger(__name__)
BOUNDARY = "taskd.boundary"


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
    ctx: dict[str, Any], key: str, account: str, name: str, params: dict[str, Any]
) -> None:
    """The arq job function behind every named task."""
    boundary: Boundary = ctx[BOUNDARY]
    records = boundary.records
    if not await records.start(key):
        return  # cancelled while queued
    timeout = boundary.settings.worker.job_timeout
    try:
        spec = boundary.registry[name]
        context = TaskContext(key, name, partial(records.progress, key), boundary.settings.machines)
        async with asyncio.timeout(timeout) as deadline:
            result = await spec.run(context, spec.params.model_validate(params))
        outcome, body = "success", orjson.dumps(result)
    except TimeoutError:
        if not deadline.expired():
            raise
        outcome, body = "error", orjson.dumps(f"timeout after {timeout:g} s")
    except asyncio.CancelledError:
        raise  # an abort (the record already says "cancelled") or a shutdown (arq retries)
    except Exception as exc:
        if not isinstance(exc, TaskFailed):
            log.exception("task %s (%s) failed", key, name)
        outcome, body = "error", orjson.dumps(one_line(exc))
    log.info("task %s (%s): %s", key, name, outcome)
    await records.finish(key, account, outcome, body)
