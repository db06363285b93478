"""A small HTTP client for the v1 API, behind `taskd submit`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson


class ApiError(Exception):
    """The server answered with an error status."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class Client:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, secret: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Secret {secret}"}

    async def create(
        self, tasks: dict[str, Any] | list[dict[str, Any]], block: bool = False
    ) -> Any:
        async with self.session.post(
            f"{self.base_url}/v1/create",
            data=orjson.dumps({"tasks": tasks, "block": block}),
            headers={**self.headers, "Content-Type": "application/json"},
        ) as response:
            body = orjson.loads(await response.read())
            if response.status != 200:
                raise ApiError(response.status, body)
            return body

    async def create_stream(
        self, tasks: dict[str, Any] | list[dict[str, Any]]
    ) -> AsyncIterator[Any]:
        async with self.session.post(
            f"{self.base_url}/v1/create_stream",
            data=orjson.dumps({"tasks": tasks}),
            headers={**self.headers, "Content-Type": "application/json"},
        ) as response:
            if response.status != 200:
                raise ApiError(response.status, orjson.loads(await response.read()))
            async for line in response.content:
                if line.strip():
                    yield orjson.loads(line)
