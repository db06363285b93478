"""CORS: key-only reads answer any origin; creating endpoints only whitelisted origins."""

from __future__ import annotations

from aiohttp import web

from taskd.origins import Origin
from taskd.web.state import ACCOUNTS

CREATING = ("/v1/create", "/v1/cancel")
PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}


def allowed_origin(request: web.Request) -> str | None:
    """The value for Access-Control-Allow-Origin, or None for no CORS headers."""
    if not request.path.startswith(CREATING):
        return "*"
    header = request.headers.get("Origin")
    origin = Origin.parse(header) if header else None
    if origin is not None and request.app[ACCOUNTS].origin_allowed(origin):
        return header
    return None


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: works for streams too, whose headers leave before the body."""
    if "Access-Control-Allow-Origin" in response.headers:
        return
    allowed = allowed_origin(request)
    if request.path.startswith(CREATING):
        response.headers.add("Vary", "Origin")
    if allowed is not None:
        response.headers["Access-Control-Allow-Origin"] = allowed


async def preflight(request: web.Request) -> web.Response:
    response = web.Response(status=204)
    if allowed_origin(request) is not None:
        response.headers.update(PREFLIGHT)
    return response
