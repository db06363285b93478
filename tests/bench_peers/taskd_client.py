"""taskd's client side (taskd's venv): block=true round trips; lists of 100 per create with
the results through one status_stream per list."""

from __future__ import annotations

import asyncio
import os
import sys

import aiohttp
import orjson

BASE = sys.argv[1]
SECRET = "bench"
LIST = 100


class Client:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def one(self) -> None:
        body = {"secret": SECRET, "block": True, "tasks": {"task_name": "hello", "name": "x"}}
        async with self.session.post(f"{BASE}/v1/create", data=orjson.dumps(body)) as response:
            [status] = orjson.loads(await response.read())
            assert status["status"] == "success", status

    async def batch(self, k: int) -> None:
        streams = []
        for start in range(0, k, LIST):
            tasks = [
                {"task_name": "hello", "name": str(i)} for i in range(start, min(k, start + LIST))
            ]
            body = orjson.dumps({"secret": SECRET, "tasks": tasks})
            async with self.session.post(f"{BASE}/v1/create", data=body) as response:
                keys = [s["key"] for s in orjson.loads(await response.read())]
            streams.append(asyncio.create_task(self.follow(keys)))
        await asyncio.gather(*streams)

    async def follow(self, keys: list[str]) -> None:
        body = orjson.dumps({"tasks": keys})
        async with self.session.post(f"{BASE}/v1/status_stream", data=body) as response:
            async for line in response.content:
                last = line
        final = orjson.loads(last)  # the first line (a list) if all had ended already
        assert all(
            s["status"] == "success" for s in (final if isinstance(final, list) else [final])
        )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    from http_drive import drive_http

    drive_http(Client)
