"""GET/POST /v1/status and /v1/status_stream (alias /v1/stream): reads need only the keys."""

from __future__ import annotations

from aiohttp import web

from taskd.errors import UnknownKeys
from taskd.events import Listener
from taskd.records import Snapshot
from taskd.web.params import Params, read_params, task_keys
from taskd.web.responses import json_bytes, json_list
from taskd.web.state import HUB, RECORDS, SETTINGS
from taskd.web.waiting import current, seed, stream, wait_all


async def known(
    request: web.Request, params: Params, keys: list[str], name: str = "tasks"
) -> list[Snapshot]:
    """The current status of every key; 404 naming each unknown or expired one under `name`."""
    snapshots = await request.app[RECORDS].read(keys)
    unknown = [k for k, s in zip(keys, snapshots, strict=True) if s is None]
    if unknown:
        raise UnknownKeys(name, params.location(name), unknown)
    return [s for s in snapshots if s is not None]


async def watched(
    request: web.Request, params: Params, keys: list[str], listener: Listener, name: str = "tasks"
) -> None:
    """Seed a listener that is already subscribed: subscribe first, then read."""
    seed(listener, keys, await known(request, params, keys, name))


async def status(request: web.Request) -> web.StreamResponse:
    params = await read_params(request)
    keys = task_keys(params, request.app[SETTINGS].server.max_keys_per_request)
    if not params.boolean("block"):
        return json_bytes(json_list(s.json for s in await known(request, params, keys)))
    async with request.app[HUB].watch(keys) as listener:
        await watched(request, params, keys, listener)
        await wait_all(listener, request.app[SETTINGS].server.max_block_seconds)
        return json_bytes(current(listener, keys))


async def status_stream(request: web.Request) -> web.StreamResponse:
    params = await read_params(request)
    keys = task_keys(params, request.app[SETTINGS].server.max_keys_per_request)
    async with request.app[HUB].watch(keys) as listener:
        await watched(request, params, keys, listener)
        return await stream(request, listener, keys)
