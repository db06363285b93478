"""POST /v1/cancel: the creating account stops its tasks, queued or running."""

from __future__ import annotations

from aiohttp import web

from taskd.errors import Forbidden, UnknownKeys
from taskd.web.params import credentials, read_params, task_keys
from taskd.web.responses import json_bytes, json_list
from taskd.web.state import ACCOUNTS, RECORDS


async def cancel(request: web.Request) -> web.Response:
    params = await read_params(request)
    account = request.app[ACCOUNTS].authenticate(credentials(request, params))
    keys = task_keys(params)
    owners = await request.app[RECORDS].owners(keys)
    unknown = [k for k, owner in zip(keys, owners, strict=True) if owner is None]
    if unknown:
        raise UnknownKeys("tasks", params.location("tasks"), unknown)
    for key, owner in zip(keys, owners, strict=True):
        if owner != account.name:
            raise Forbidden(f"task {key} belongs to another account")
    return json_bytes(json_list(await request.app[RECORDS].cancel(keys, account.name)))
