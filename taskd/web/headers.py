"""Request headers checked once, before any handler reads them: text, a usable Host, and a
Content-Encoding taskd can decode."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from taskd.errors import InvalidRequest, Problem, RequestError

# What aiohttp decodes as a request body streams in (with Brotli and backports.zstd).
ENCODINGS = frozenset({"", "identity", "gzip", "deflate", "br", "zstd"})
HOST_FORBIDDEN = frozenset("/?#@\\ ")


class UnsupportedEncoding(RequestError):
    status = 415


def is_text(value: str) -> bool:
    """False for header bytes that were not UTF-8 (aiohttp keeps them as lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    for name, value in request.headers.items():
        if not is_text(value) or not is_text(name):
            shown = name if is_text(name) else "a header"
            raise InvalidRequest([Problem(shown, "header", f"{shown} is not valid UTF-8 text")])
    # Redirect URLs are built on Host when public_url is empty: it must be a bare host[:port].
    host = request.headers.get("Host", "")
    if HOST_FORBIDDEN & set(host):
        raise InvalidRequest([Problem("Host", "header", "Host must be a host name and a port")])
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ENCODINGS:
        raise UnsupportedEncoding(
            "unsupported Content-Encoding: use gzip, deflate, br, zstd or none"
        )
    return await handler(request)
