"""The browser side, served by taskd itself: the JavaScript client and the live page.

Plain files from `taskd/web/static/`, read once at start: no build step, nothing fetched
from elsewhere at run time.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from taskd.errors import NotFound

TYPES = {
    "client.js": "text/javascript",
    "app.js": "text/javascript",
    "style.css": "text/css",
    "index.html": "text/html",
}
STATIC = {name: (resources.files("taskd.web") / "static" / name).read_bytes() for name in TYPES}
# The page's own files: served at /ui/{name}; the client at /v1/client.js.
ASSETS = frozenset({"app.js", "style.css"})


def static(name: str) -> web.Response:
    return web.Response(
        body=STATIC[name],
        content_type=TYPES[name],
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


async def client_js(request: web.Request) -> web.StreamResponse:
    return static("client.js")


async def page(request: web.Request) -> web.StreamResponse:
    return static("index.html")


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise NotFound(f"not found: {request.path}")
    return static(name)
