"""POST /v1/create and /v1/create_stream: authenticate, validate, admit, enqueue."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from taskd.auth import Account
from taskd.errors import LimitReached
from taskd.events import Listener
from taskd.records import NewTask, Snapshot, new_key
from taskd.validation import validate_definitions
from taskd.web.params import Params, credentials, read_params
from taskd.web.responses import json_bytes, json_list
from taskd.web.state import ACCOUNTS, HUB, METRICS, RECORDS, REGISTRY, SETTINGS
from taskd.web.waiting import current, seed, stream, wait_all


@dataclass(frozen=True)
class Admission:
    account: Account
    tasks: list[NewTask]
    keys: list[str]


def admit(
    request: web.Request,
    params: Params,
    name: str = "tasks",
    form: dict[str, Any] | None = None,
) -> Admission:
    """Credentials (401), then every definition (400), then the per-request limit (401).

    The definitions are the parameter `name`, or for a GET form the query's own `form`.
    """
    account = request.app[ACCOUNTS].authenticate(credentials(request, params))
    if form is None:
        definitions, location = params.get(name), params.location(name)
    else:
        definitions, name, location = form, "", "querystring"
    tasks = validate_definitions(request.app[REGISTRY], definitions, name, location)
    if len(tasks) > account.max_tasks_per_request:
        raise LimitReached("max_tasks_per_request", account.max_tasks_per_request, None)
    return Admission(account, tasks, [new_key() for _ in tasks])


async def enqueue(request: web.Request, admission: Admission) -> list[bytes]:
    """Store and enqueue in one round trip; rate_per_minute and max_pending are checked there."""
    created = await request.app[RECORDS].create(
        admission.account.name, admission.account.limits, admission.tasks, admission.keys
    )
    counter = request.app[METRICS].created
    for task in admission.tasks:
        counter.labels(task.name).inc()
    return created


@contextlib.asynccontextmanager
async def enqueue_watched(request: web.Request, admission: Admission) -> AsyncIterator[Listener]:
    """Subscribe before the tasks exist, so not even their first change can be missed."""
    async with request.app[HUB].watch(admission.keys) as listener:
        created = await enqueue(request, admission)
        seed(listener, admission.keys, [Snapshot(1, status) for status in created])
        yield listener


async def create(request: web.Request) -> web.StreamResponse:
    params = await read_params(request, json_fields=frozenset({"tasks"}))
    block = params.boolean("block")
    admission = admit(request, params)
    if not block:
        return json_bytes(json_list(await enqueue(request, admission)))
    async with enqueue_watched(request, admission) as listener:
        await wait_all(listener, request.app[SETTINGS].server.max_block_seconds)
        return json_bytes(current(listener, admission.keys))


async def create_stream(request: web.Request) -> web.StreamResponse:
    params = await read_params(request, json_fields=frozenset({"tasks"}))
    admission = admit(request, params)
    async with enqueue_watched(request, admission) as listener:
        return await stream(request, listener, admission.keys)
