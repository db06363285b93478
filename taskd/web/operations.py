"""GET /v1/health and GET /metrics: what an operator's checks and Prometheus read."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from taskd.connections import REDIS_ERRORS
from taskd.heartbeats import Beat, Heartbeats
from taskd.web.responses import json_value
from taskd.web.state import METRICS, RECORDS, SETTINGS, STORAGE


def iso(unix: float | None) -> str | None:
    return datetime.fromtimestamp(unix, UTC).isoformat() if unix is not None else None


async def health(request: web.Request) -> web.StreamResponse:
    """`ok`; `degraded` with no living worker, storage failing or a machine unreachable;
    `down` (503) when Redis cannot be reached."""
    settings = request.app[SETTINGS]
    records = request.app[RECORDS]
    storage = {"ok": await request.app[STORAGE].check(), "backend": settings.storage.backend}
    started = time.perf_counter()
    try:
        await records.redis.ping()
        latency = round((time.perf_counter() - started) * 1000, 3)
        beats = await Heartbeats(records.redis, records.keys).alive(settings.worker.lease)
        queue = int(await records.redis.zcard(records.keys.queue))
    except REDIS_ERRORS:
        body: dict[str, Any] = {
            "status": "down",
            "redis": {"ok": False, "latency_ms": None},
            "workers": [],
            "queue": None,
            "storage": storage,
            "machines": machines(settings.machines, []),
        }
        return json_value(body, 503, {"Retry-After": "1"})
    seen = machines(settings.machines, beats)
    healthy = beats and storage["ok"] and all(m["ok"] is not False for m in seen.values())
    body = {
        "status": "ok" if healthy else "degraded",
        "redis": {"ok": True, "latency_ms": latency},
        "workers": [
            {"id": b.id, "host": b.host, "jobs": b.jobs, "last_seen": iso(b.last_seen)}
            for b in beats
        ],
        "queue": queue,
        "storage": storage,
        "machines": seen,
    }
    return json_value(body)


def machines(configured: Any, beats: list[Beat]) -> dict[str, dict[str, Any]]:
    """Each configured machine as the worker that looked at it last saw it (None: nobody yet)."""
    seen: dict[str, dict[str, Any]] = {name: {"ok": None, "checked": None} for name in configured}
    newest: dict[str, float] = {}
    for beat in beats:
        for name, state in beat.machines.items():
            if name in seen and state["checked"] > newest.get(name, 0):
                newest[name] = state["checked"]
                seen[name] = {"ok": state["ok"], "checked": iso(state["checked"])}
    return seen


async def metrics(request: web.Request) -> web.StreamResponse:
    server = request.app[METRICS]
    records = request.app[RECORDS]
    settings = request.app[SETTINGS]
    try:
        server.queue_depth.set(await records.redis.zcard(records.keys.queue))
        beats = await Heartbeats(records.redis, records.keys).alive(settings.worker.lease)
        server.workers.snapshots = {b.id: b.metrics for b in beats}
    except REDIS_ERRORS:
        server.workers.snapshots = {}  # this process's own figures still tell something
    return web.Response(
        body=generate_latest(server.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP requests by route (its pattern, never the raw path), method and status code."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    counter = request.app[METRICS].requests
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and the like
        counter.labels(route, request.method, str(exc.status)).inc()
        raise
    counter.labels(route, request.method, str(response.status)).inc()
    return response
