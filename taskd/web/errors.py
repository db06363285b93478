"""The one place where errors become HTTP answers: always JSON, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from taskd.connections import REDIS_ERRORS
from taskd.errors import MAX_PROBLEMS, InvalidRequest, LimitReached, RequestError, UnknownKeys
from taskd.web.responses import json_value
from taskd.web.state import SETTINGS

log = logging.getLogger(__name__)


def error_answer(exc: RequestError) -> web.Response:
    if isinstance(exc, InvalidRequest | UnknownKeys):
        errors = [p.as_json() for p in exc.problems[:MAX_PROBLEMS]]
        return json_value({"status": "error", "errors": errors}, exc.status)
    headers = {}
    if isinstance(exc, LimitReached) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return json_value({"status": "error", "message": exc.message}, exc.status, headers)


def http_answer(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    if isinstance(exc, web.HTTPNotFound):
        message = f"not found: {request.path}"
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        message = f"method {request.method} not allowed on {request.path}"
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        message = (
            f"request body too large (at most {request.app[SETTINGS].server.max_body_bytes} bytes)"
        )
    else:
        message = exc.reason
    headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
    return json_value({"status": "error", "message": message}, exc.status, headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestError as exc:
        return error_answer(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects are answers, not errors
        return http_answer(request, exc)
    except (ConnectionResetError, TimeoutError):
        raise
    except REDIS_ERRORS as exc:
        log.error("redis unavailable on %s %s: %s", request.method, request.path, exc)
        return json_value(
            {"status": "error", "message": "service unavailable: the task store cannot be reached"},
            503,
            {"Retry-After": "1"},
        )
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return json_value({"status": "error", "message": "internal error"}, 500)


class ServerLogger(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger (a supported setting: RequestHandler's `logger`): a
    client's malformed request — an oversized request line or header, bad framing — is one
    warning line, never a traceback at ERROR. aiohttp answers those itself, in plain text,
    before any middleware runs; it offers no supported way to make that answer JSON."""

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            # aiohttp's text is "400, message:\n  <why>": keep the why, shortened.
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            self.warning("%s: %s", str(msg) % args, (lines or [type(exc).__name__])[-1][:200])
        else:
            self.logger.exception(msg, *args, **kwargs)


# Passed to aiohttp's RequestHandler by `serve` and by the tests' servers.
HANDLER_OPTIONS: dict[str, Any] = {"logger": ServerLogger(logging.getLogger("aiohttp.server"))}
