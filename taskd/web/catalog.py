"""GET /v1/tasks: every named task with its parameters as JSON Schema; no credentials needed."""

from __future__ import annotations

from aiohttp import web

from taskd.web.responses import json_bytes
from taskd.web.state import CATALOG


async def catalog(request: web.Request) -> web.Response:
    return json_bytes(request.app[CATALOG])
