"""The Python client of taskd's HTTP API: `AsyncClient`, and `Client` for code without asyncio.

It needs only aiohttp and orjson (installing taskd's server extras is not required)::

    from taskd.client import Client

    with Client("http://127.0.0.1:8080", secret="demo-secret") as taskd:
        [status] = taskd.create({"task_name": "hello", "name": "world"}, block=True)
        print(status["result"])                      # Hello world
        for status in taskd.create_stream({"task_name": "sleep", "seconds": 1}):
            print(status["status"], status.get("progress"))

    async with AsyncClient(url, api_key="…") as taskd:   # the same, awaited
        statuses = await taskd.wait([key1, key2])

Errors are `ApiError`s carrying the server's `message` or `errors` (a subclass per status:
`BadRequest`, `Unauthorized`, `Forbidden`, `NotFound`, `TooLarge`, `Unavailable`), or
`ConnectionFailed`. A 503 or a connection error is retried with backoff, honouring
`Retry-After`, before it is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from taskd.signing import EXPIRES, sign_url

T = TypeVar("T")
Definition = dict[str, Any]
Status = dict[str, Any]
TERMINAL = ("success", "error")
CHUNK = 1 << 18


class ClientError(Exception):
    """Anything that kept a request from getting its answer."""


class ConnectionFailed(ClientError):
    """The server could not be reached (after the retries)."""


class ApiError(ClientError):
    """The server answered with an error: its `message`, or its `errors` (one per problem)."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        self.message: str | None = body.get("message") if isinstance(body, dict) else None
        self.errors: list[dict[str, str]] = (
            list(body.get("errors", [])) if isinstance(body, dict) else []
        )
        described = self.message or "; ".join(
            f"{e.get('name')}: {e.get('description')}" for e in self.errors
        )
        super().__init__(f"HTTP {status}: {described or body}")


class BadRequest(ApiError):
    pass


class Unauthorized(ApiError):
    pass


class Forbidden(ApiError):
    pass


class NotFound(ApiError):
    pass


class TooLarge(ApiError):
    pass


class Unavailable(ApiError):
    pass


ERRORS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: TooLarge,
    503: Unavailable,
}


def api_error(status: int, body: bytes) -> ApiError:
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = body.decode(errors="replace")
    return ERRORS.get(status, ApiError)(status, parsed)


def as_list(tasks: Definition | Sequence[Definition]) -> Any:
    return tasks if isinstance(tasks, dict) else list(tasks)


class AsyncClient:
    """One server, one account; `async with` it (or call `close()`)."""

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        api_key: str | None = None,
        origin: str | None = None,
        retries: int = 3,
        timeout: float | None = None,
    ) -> None:
        """`origin` is sent with an API key (the account's whitelist checks it)."""
        self.url = url.rstrip("/")
        self.retries = retries
        self.headers: dict[str, str] = {}
        if secret is not None:
            self.headers["Authorization"] = f"Secret {secret}"
        elif api_key is not None:
            self.headers["Authorization"] = f"Api-Key {api_key}"
            if origin:
                self.headers["Origin"] = origin
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    # -- requests -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def request(
        self, method: str, path: str, body: Any = None, **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The response to a request, once it succeeded; retried on 503 and lost connections."""
        data = orjson.dumps(body) if body is not None else kwargs.pop("data", None)
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if body is not None:
            headers["Content-Type"] = "application/json"
        delay = 0.5
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = await self.session.request(
                    method, self.url + path, data=data, headers=headers, **kwargs
                )
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                if last or not replayable(data):
                    raise ConnectionFailed(f"cannot reach {self.url}: {describe(exc)}") from None
                await asyncio.sleep(delay)
                delay *= 2
                continue
            try:
                if response.status == 503 and not last and replayable(data):
                    await asyncio.sleep(retry_after(response, delay))
                    delay *= 2
                    continue
                if response.status >= 400:
                    raise api_error(response.status, await response.read())
                yield response
                return
            finally:
                response.release()

    async def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        async with self.request(method, path, body, **kwargs) as response:
            return orjson.loads(await response.read())

    async def lines(self, method: str, path: str, body: Any) -> AsyncIterator[Status]:
        """An NDJSON stream as statuses: those of its first line one by one, then each change."""
        async with self.request(method, path, body) as response:
            first = True
            async for line in response.content:
                if not line.strip():
                    continue
                value = orjson.loads(line)
                if first and isinstance(value, list):
                    for status in value:
                        yield status
                else:
                    yield value
                first = False

    # -- the API --------------------------------------------------------------------------

    async def create(
        self, tasks: Definition | Sequence[Definition], *, block: bool = False
    ) -> list[Status]:
        """Create one task or a list; their statuses in order (finished ones with `block`).

        >>> [status] = await taskd.create({"task_name": "hello", "name": "you"}, block=True)
        """
        result: list[Status] = await self.json(
            "POST", "/v1/create", {"tasks": as_list(tasks), "block": block}
        )
        return result

    def create_stream(self, tasks: Definition | Sequence[Definition]) -> AsyncIterator[Status]:
        """Create and follow: each task's status, then every change until all have ended.

        >>> async for status in taskd.create_stream({"task_name": "sleep", "seconds": 2}):
        ...     print(status.get("progress"))
        """
        return self.lines("POST", "/v1/create_stream", {"tasks": as_list(tasks)})

    async def status(self, keys: str | Sequence[str], *, block: bool = False) -> list[Status]:
        """The statuses of these keys (waiting for their end with `block`, up to the server's
        `max_block_seconds`)."""
        result: list[Status] = await self.json(
            "POST", "/v1/status", {"tasks": key_list(keys), "block": block}
        )
        return result

    def status_stream(self, keys: str | Sequence[str]) -> AsyncIterator[Status]:
        """Each task's status, then every change until all have ended."""
        return self.lines("POST", "/v1/status_stream", {"tasks": key_list(keys)})

    async def wait(self, keys: str | Sequence[str]) -> list[Status]:
        """Until every task has ended, however long; their final statuses in order."""
        order = key_list(keys)
        final: dict[str, Status] = {}
        async for status in self.status_stream(order):
            final[status["key"]] = status
        return [final[key] for key in order]

    async def cancel(self, keys: str | Sequence[str]) -> list[Status]:
        result: list[Status] = await self.json("POST", "/v1/cancel", {"tasks": key_list(keys)})
        return result

    async def catalog(self) -> list[dict[str, Any]]:
        """Every task the server runs, with its parameters as JSON Schema."""
        body = await self.json("GET", "/v1/tasks")
        return list(body["tasks"])

    async def upload(self, path: str | Path, filename: str | None = None) -> Status:
        """Stream a local file to the server; the `upload` task's status (`success`)."""
        source = Path(path)
        name = filename or source.name
        with source.open("rb") as body:  # noqa: ASYNC230 (aiohttp reads it in a thread)
            [status] = await self.json("POST", f"/v1/upload/{quote(name)}", data=body)
        return dict(status)

    def file_url(self, key: str, filename: str | None = None) -> str:
        """The URL that redirects to a task's output file (it waits for the task)."""
        name = f"/{quote(filename)}" if filename else ""
        return f"{self.url}/v1/file{name}?{urlencode({'task': key})}"

    async def download(self, key: str, path: str | Path, filename: str | None = None) -> Path:
        """Stream a task's output file to `path` (written aside, then renamed); `path`."""
        target = Path(path)
        temp = target.with_name(f".{target.name}.part")
        url = self.file_url(key, filename).removeprefix(self.url)
        async with self.request("GET", url) as response:
            with temp.open("wb") as out:
                async for chunk in response.content.iter_chunked(CHUNK):
                    out.write(chunk)
        temp.replace(target)
        return target

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.json("GET", "/v1/health")
        return result


def sign(url: str, account: str, secret: str, ttl: float | None = None) -> str:
    """A GET URL signed for `account` (for `<img src>`), valid `ttl` seconds or for ever."""
    extra = [("account", account)]
    if ttl is not None:
        extra.append((EXPIRES, str(int(time.time() + ttl))))
    return sign_url(url, secret.encode(), extra)


def key_list(keys: str | Sequence[str]) -> list[str]:
    return [keys] if isinstance(keys, str) else list(keys)


def replayable(data: Any) -> bool:
    """A body that can be sent again (a file being streamed cannot)."""
    return data is None or isinstance(data, bytes)


def retry_after(response: aiohttp.ClientResponse, default: float) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", default)))
    except ValueError:
        return default


def describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return str(exc.os_error.strerror or exc.os_error)
    return str(exc) or type(exc).__name__


class Client:
    """The same API without asyncio: each call runs on the client's own event loop.

    >>> with Client("http://127.0.0.1:8080", secret="demo-secret") as taskd:
    ...     taskd.create({"task_name": "hello", "name": "sync"}, block=True)
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        api_key: str | None = None,
        origin: str | None = None,
        retries: int = 3,
        timeout: float | None = None,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._async = AsyncClient(
            url, secret=secret, api_key=api_key, origin=origin, retries=retries, timeout=timeout
        )
        self.url = self._async.url

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._async.close())
            self._loop.close()

    def _run(self, call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        return self._loop.run_until_complete(call(*args, **kwargs))

    def _iterate(self, stream: AsyncIterator[Status]) -> Iterator[Status]:
        try:
            while True:
                try:
                    yield self._loop.run_until_complete(anext(stream))
                except StopAsyncIteration:
                    return
        finally:
            self._loop.run_until_complete(stream.aclose())  # type: ignore[attr-defined]

    def create(
        self, tasks: Definition | Sequence[Definition], *, block: bool = False
    ) -> list[Status]:
        return self._run(self._async.create, tasks, block=block)

    def create_stream(self, tasks: Definition | Sequence[Definition]) -> Iterator[Status]:
        return self._iterate(self._async.create_stream(tasks))

    def status(self, keys: str | Sequence[str], *, block: bool = False) -> list[Status]:
        return self._run(self._async.status, keys, block=block)

    def status_stream(self, keys: str | Sequence[str]) -> Iterator[Status]:
        return self._iterate(self._async.status_stream(keys))

    def wait(self, keys: str | Sequence[str]) -> list[Status]:
        return self._run(self._async.wait, keys)

    def cancel(self, keys: str | Sequence[str]) -> list[Status]:
        return self._run(self._async.cancel, keys)

    def catalog(self) -> list[dict[str, Any]]:
        return self._run(self._async.catalog)

    def upload(self, path: str | Path, filename: str | None = None) -> Status:
        return self._run(self._async.upload, path, filename)

    def file_url(self, key: str, filename: str | None = None) -> str:
        return self._async.file_url(key, filename)

    def download(self, key: str, path: str | Path, filename: str | None = None) -> Path:
        return self._run(self._async.download, key, path, filename)

    def health(self) -> dict[str, Any]:
        return self._run(self._async.health)
