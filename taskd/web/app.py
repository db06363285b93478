"""The aiohttp application: state, middlewares, signals and the v1 routes."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from taskd.auth import Accounts
from taskd.metrics import ServerMetrics
from taskd.registry import Registry, load_registry
from taskd.settings import Settings
from taskd.web import (
    cancel,
    catalog,
    create,
    files,
    local_files,
    openapi,
    operations,
    status,
    ui,
    uploads,
)
from taskd.web.cors import add_cors_headers, preflight
from taskd.web.errors import error_middleware
from taskd.web.headers import headers_middleware
from taskd.web.hits import RecentHits
from taskd.web.openapi import build_spec
from taskd.web.operations import count_requests
from taskd.web.state import (
    ACCOUNTS,
    CATALOG,
    HITS,
    HUB,
    METRICS,
    OPENAPI,
    REGISTRY,
    SETTINGS,
    resources_context,
)


def create_app(settings: Settings, registry: Registry | None = None) -> web.Application:
    registry = (
        registry
        if registry is not None
        else load_registry(settings.tasks.modules, settings.machines)
    )
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[count_requests, error_middleware, headers_middleware],
    )
    app[SETTINGS] = settings
    app[ACCOUNTS] = Accounts(settings.accounts)
    app[REGISTRY] = registry
    app[CATALOG] = orjson.dumps({"tasks": registry.catalog()})
    app[HITS] = RecentHits()
    app[METRICS] = ServerMetrics()
    app[OPENAPI] = orjson.dumps(build_spec(registry))
    app.cleanup_ctx.append(resources_context)
    app.on_shutdown.append(end_waits)
    app.on_response_prepare.append(add_cors_headers)
    routes = [
        ("POST", "/v1/create", create.create),
        ("POST", "/v1/create_stream", create.create_stream),
        ("*", "/v1/status", status.status),
        ("*", "/v1/status_stream", status.status_stream),
        ("*", "/v1/stream", status.status_stream),
        ("GET", "/v1/tasks", catalog.catalog),
        ("POST", "/v1/cancel", cancel.cancel),
        ("*", "/v1/create_file", files.create_file),
        ("*", "/v1/create_file/{filename}", files.create_file),
        ("GET", "/v1/file", files.file),
        ("GET", "/v1/file/{filename}", files.file),
        ("GET", "/v1/files/{key}/{name}", local_files.serve),
        ("POST", "/v1/upload/{filename}", uploads.upload),
        ("GET", "/v1/health", operations.health),
        ("GET", "/metrics", operations.metrics),
        ("GET", "/v1/openapi.json", openapi.openapi),
        ("GET", "/v1/client.js", ui.client_js),
        ("GET", "/", ui.page),
        ("GET", "/ui", ui.page),
        ("GET", "/ui/{name}", ui.asset),
    ]
    for method, path, handler in routes:
        if method == "GET":
            app.router.add_get(path, handler, allow_head=path.startswith("/v1/files/"))
        elif method == "*":
            app.router.add_get(path, handler, allow_head=False)
            app.router.add_post(path, handler)
        else:
            app.router.add_route(method, path, handler)
        app.router.add_route("OPTIONS", path, preflight)
    return app


async def end_waits(app: web.Application) -> None:
    """SIGTERM: open streams end cleanly after their current line, blocking waits answer."""
    app[HUB].close_listeners()


# Streams and blocking requests end when their client goes away, releasing their subscriptions.
RUNNER_OPTIONS: dict[str, Any] = {"handler_cancellation": True, "shutdown_timeout": 3.0}
