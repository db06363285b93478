"""Request parameters: a JSON object body merged with the query string, and their coercions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from taskd.auth import Credentials, SignedQuery
from taskd.errors import InvalidRequest, Location, Problem
from taskd.origins import request_origin
from taskd.signing import SIG
from taskd.web.state import SETTINGS

TRUE = frozenset({"true", "1", "yes"})
FALSE = frozenset({"false", "0", "no"})


@dataclass(frozen=True)
class Params:
    """Named values of a request, each with where it came from (for error entries)."""

    values: dict[str, Any]
    sources: dict[str, Location]
    # Where a parameter that was not given is reported missing: the body of a POST.
    missing: Location = "querystring"

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def location(self, name: str) -> Location:
        return self.sources.get(name, self.missing)

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in TRUE | FALSE:
            return value.lower() in TRUE
        raise InvalidRequest(
            [Problem(name, self.location(name), f"{name} must be a boolean (true or false)")]
        )

    def string(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or isinstance(value, str):
            return value
        raise InvalidRequest([Problem(name, self.location(name), f"{name} must be a string")])


async def read_params(request: web.Request, json_fields: frozenset[str] = frozenset()) -> Params:
    """Query parameters, overridden by the body's (POST); `json_fields` in a query are JSON."""
    params = query_params(request, json_fields)
    if request.method == "POST":
        for name, value in (await read_body(request)).items():
            params.values[name], params.sources[name] = value, "body"
        return Params(params.values, params.sources, "body")
    return params


def query_params(request: web.Request, json_fields: frozenset[str] = frozenset()) -> Params:
    """The query's parameters only (for a request whose body is not JSON: an upload)."""
    values: dict[str, Any] = {}
    sources: dict[str, Location] = {}
    for name in request.query:
        all_values = request.query.getall(name)
        value: Any = all_values[0] if len(all_values) == 1 else all_values
        if name in json_fields and isinstance(value, str):
            value = parse_query_json(name, value)
        values[name], sources[name] = value, "querystring"
    return Params(values, sources)


def parse_query_json(name: str, value: str) -> Any:
    stripped = value.lstrip()
    if not stripped.startswith(("{", "[")):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidRequest([Problem(name, "querystring", f"{name} is not valid JSON")]) from None


async def read_body(request: web.Request) -> dict[str, Any]:
    try:
        raw = await request.read()
    except (web.RequestPayloadError, HttpProcessingError) as exc:  # e.g. gzip that won't inflate
        lines = str(exc).strip().splitlines()  # aiohttp's text is "400, message:\n  <why>"
        message = lines[-1].strip() if lines else "cannot read"
        raise InvalidRequest([Problem("body", "body", f"unreadable body: {message}")]) from None
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest([Problem("body", "body", f"invalid JSON: {exc}")]) from None
    if not isinstance(body, dict):
        raise InvalidRequest([Problem("body", "body", "the body must be a JSON object")])
    return body


def credentials(request: web.Request, params: Params) -> Credentials:
    """Secret or API key from the body, the query or the Authorization header."""
    secret, api_key = params.string("secret"), params.string("api_key")
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if secret is None and scheme.lower() == "secret":
        secret = value.strip()
    if api_key is None and scheme.lower() == "api-key":
        api_key = value.strip()
    origin = request_origin(request.headers.get("Origin"), request.headers.get("Referer"))
    signed = None
    if request.method == "GET" and SIG in request.query:
        # Only a query can be signed: a body would not be covered.
        path = request.raw_path.split("?", 1)[0]
        prefix = urlsplit(request.app[SETTINGS].server.public_url).path.rstrip("/")
        paths = (path, prefix + path) if prefix else (path,)
        signed = SignedQuery(paths, list(request.query.items()))
    return Credentials(secret=secret, api_key=api_key, origin=origin, signed=signed)


def task_keys(params: Params, limit: int, name: str = "tasks") -> list[str]:
    """A list of task keys: repeated or comma-separated in a query, a list (or one) in a body;
    at most `limit` of them."""
    value = params.get(name)
    location = params.location(name)
    if value is None:
        raise InvalidRequest([Problem(name, location, f"{name} is missing")])
    items = value if isinstance(value, list) else [value]
    if len(items) > limit:  # before any work on them
        raise InvalidRequest(
            [Problem(name, location, f"{name} names {len(items)} keys, at most {limit} allowed")]
        )
    keys: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidRequest([Problem(name, location, f"{name} must be a list of task keys")])
        keys += [k.strip() for k in item.split(",") if k.strip()] if location != "body" else [item]
    if not keys:
        raise InvalidRequest([Problem(name, location, f"{name} is empty")])
    if len(keys) > limit:
        raise InvalidRequest(
            [Problem(name, location, f"{name} names {len(keys)} keys, at most {limit} allowed")]
        )
    return keys
