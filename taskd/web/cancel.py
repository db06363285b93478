"""POST /v1/cancel: the creating account stops its tasks, queued or running; errbacks follow."""

from __future__ import annotations

import orjson
from aiohttp import web

from taskd.errors import Forbidden, UnknownKeys
from taskd.web.params import credentials, read_params, task_keys
from taskd.web.responses import json_bytes, json_list
from taskd.web.state import ACCOUNTS, CALLBACKS, RECORDS, SETTINGS


async def cancel(request: web.Request) -> web.Response:
    params = await read_params(request)
    account = request.app[ACCOUNTS].authenticate(credentials(request, params))
    keys = task_keys(params, request.app[SETTINGS].server.max_keys_per_request)
    owners = await request.app[RECORDS].owners(keys)
    unknown = [k for k, owner in zip(keys, owners, strict=True) if owner is None]
    if unknown:
        raise UnknownKeys("tasks", params.location("tasks"), unknown)
    for key, owner in zip(keys, owners, strict=True):
        if owner is not None and owner.account != account.name:
            raise Forbidden(f"task {key} belongs to another account")
    outcomes = await request.app[RECORDS].cancel(keys, [o for o in owners if o is not None])
    for key, (status, definition) in zip(keys, outcomes, strict=True):
        errback = orjson.loads(definition).get("url_errback") if definition else None
        if errback:
            request.app[CALLBACKS].send(key, errback, status, account.webhook_key)
    return json_bytes(json_list(status for status, _ in outcomes))
