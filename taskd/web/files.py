"""create_file and file: wait for a task, then redirect to its output file (302)."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from taskd.errors import InvalidRequest, NotFound, Problem
from taskd.records import CacheEntry, Snapshot, is_terminal, status_of
from taskd.signing import EXPIRES, EXPIRES_FORM, SIG
from taskd.web.create import Admission, admit, enqueue_watched
from taskd.web.hits import HitKey, hit_key
from taskd.web.params import Params, parse_query_json, read_params
from taskd.web.responses import json_bytes
from taskd.web.state import HITS, HUB, RECORDS, REGISTRY, SETTINGS, STORAGE
from taskd.web.status import watched
from taskd.web.waiting import wait_all

# Query parameters of a GET create_file that are credentials, not task parameters.
CREDENTIALS = frozenset({"secret", "api_key", "account", "expires", "sig"})


async def create_file(request: web.Request) -> web.StreamResponse:
    """POST {"task": DEF}, or GET ?task_name=…&param=… for `<img src>` (cached)."""
    if request.method == "POST":
        return await create_file_post(request)
    return await create_file_get(request)


async def create_file_post(request: web.Request) -> web.StreamResponse:
    params = await read_params(request, json_fields=frozenset({"task"}))
    admission = admit(request, params, "task")
    if len(admission.tasks) != 1 or not isinstance(params.get("task"), dict):
        location = params.location("task")
        raise InvalidRequest([Problem("task", location, "task must be one task definition")])
    return await create_and_answer(request, admission)


async def create_file_get(request: web.Request) -> web.StreamResponse:
    ttl = request.app[SETTINGS].storage.cache_ttl
    recent = hit_key(request)
    remembered = request.app[HITS].get(recent) if ttl else None
    if remembered is not None:
        return redirect(request, remembered)
    params = await read_params(request)
    admission = admit(request, params, form=query_definition(request, params))
    if ttl == 0:
        return await create_and_answer(request, admission)
    # Identical definitions of one account share a task: a finished one is answered at once,
    # a running one is joined.
    task = admission.tasks[0]
    key, snapshot = await request.app[RECORDS].create_cached(
        admission.account.name,
        admission.account.limits,
        task,
        admission.keys[0],
        CacheEntry(request.app[RECORDS].keys.cache(admission.account.name, task.definition), ttl),
    )
    if not is_terminal(snapshot.json):
        snapshot = await wait_for(request, params, key)
    return await answer(request, snapshot, recent)


async def create_and_answer(request: web.Request, admission: Admission) -> web.StreamResponse:
    async with enqueue_watched(request, admission) as listener:
        await wait_all(listener, request.app[SETTINGS].server.max_block_seconds)
        return await answer(request, listener.seen[admission.keys[0]])


async def file(request: web.Request) -> web.StreamResponse:
    """GET ?task=K: wait for the task, then redirect to its file."""
    params = await read_params(request)
    key = params.string("task")
    if not key:
        raise InvalidRequest([Problem("task", params.location("task"), "task is missing")])
    return await answer(request, await wait_for(request, params, key))


async def wait_for(request: web.Request, params: Params, key: str) -> Snapshot:
    """The task's status once terminal, or when max_block_seconds have passed."""
    async with request.app[HUB].watch([key]) as listener:
        await watched(request, params, [key], listener, name="task")
        await wait_all(listener, request.app[SETTINGS].server.max_block_seconds)
        return listener.seen[key]


def query_definition(request: web.Request, params: Params) -> dict[str, Any]:
    """A GET form's definition: every query parameter but the credentials."""
    form = {k: v for k, v in params.values.items() if k not in CREDENTIALS}
    name = form.get("task_name")
    if isinstance(name, str) and name in request.app[REGISTRY]:
        for field in request.app[REGISTRY][name].json_parameters() & form.keys():
            if isinstance(form[field], str):
                form[field] = parse_query_json(field, form[field])
    return form


async def answer(
    request: web.Request, snapshot: Snapshot, recent: HitKey | None = None
) -> web.StreamResponse:
    """302 to the file; 504 still running, 400 failed, 404 no such file (with the status).

    With `recent`, a cached result: the redirect is remembered for identical requests.
    """
    if not is_terminal(snapshot.json):
        return json_bytes(snapshot.json, 504)
    if status_of(snapshot.json) == "error":
        return json_bytes(snapshot.json, 400)
    status = orjson.loads(snapshot.json)
    settings = request.app[SETTINGS]
    name = choose(status, request.match_info.get("filename"))
    base = settings.server.public_url.rstrip("/") or f"{request.scheme}://{request.host}"
    location = await request.app[STORAGE].url(status["key"], name, base)
    if recent is not None:
        completed = datetime.fromisoformat(status["events"]["completed"]).timestamp()
        until = min(
            completed + min(settings.storage.cache_ttl, settings.worker.result_ttl),
            time.time() + settings.storage.url_ttl / 4,
            signed_until(request),
        )
        request.app[HITS].put(recent, location, until)
    return redirect(request, location)


def redirect(request: web.Request, location: str) -> web.Response:
    # The target stays valid url_ttl seconds (at least 3/4 of that when remembered): a
    # browser may keep the redirect half of it.
    max_age = request.app[SETTINGS].storage.url_ttl // 2
    headers = {"Location": location, "Cache-Control": f"private, max-age={max_age}"}
    return web.Response(status=302, headers=headers)


def signed_until(request: web.Request) -> float:
    expires = request.query.get(EXPIRES, "") if SIG in request.query else ""
    return float(expires) if EXPIRES_FORM.fullmatch(expires) else math.inf


def choose(status: dict[str, Any], filename: str | None) -> str:
    files: list[str] = status.get("files") or []
    if not files:
        raise NotFound(f"task {status['key']} produced no files")
    if len(files) == 1:
        return files[0]
    if filename in files:
        return filename
    choices = ", ".join(f"'{f}'" for f in files)
    if filename is None:
        raise NotFound(f"task {status['key']} produced several files, choose one of: {choices}")
    raise NotFound(f"'{filename}' is not a valid filename, choose one of: {choices}")
