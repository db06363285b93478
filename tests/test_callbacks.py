"""url_callback / url_errback: the final status POSTed, retried, never changing the task."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from tests.conftest import SECRET, Client
from tests.helpers import create, create_ok
from tests.images import ImageServer


class Hook:
    """An endpoint that records what it is sent, failing the first `failures` times."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[tuple[str, str, Any]] = []

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        self.received.append((request.method, request.content_type, await request.json()))
        if len(self.received) <= self.failures:
            raise web.HTTPInternalServerError()
        return web.Response(text="thanks")

    async def wait_for(self, count: int, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                await asyncio.sleep(0.02)


def hooked(server: ImageServer, name: str, hook: Hook) -> str:
    server.extra[name] = hook
    return f"{server.url}/{name}"


async def current(api: Client, key: str) -> Any:
    response = await api.get("/v1/status", params={"tasks": key})
    return (await response.json())[0]


async def test_success_posts_the_final_status_to_url_callback(
    api: Client, image_server: ImageServer
) -> None:
    ok, err = Hook(), Hook()
    definition = {
        "task_name": "hello",
        "name": "hook",
        "url_callback": hooked(image_server, "ok", ok),
        "url_errback": hooked(image_server, "err", err),
    }
    [status] = await create_ok(api, definition, block=True)
    await ok.wait_for(1)
    assert ok.received == [("POST", "application/json", status)]
    assert status["result"] == "Hello hook"
    await asyncio.sleep(0.2)
    assert err.received == []


async def test_failure_posts_to_url_errback(api: Client, image_server: ImageServer) -> None:
    ok, err = Hook(), Hook()
    definition = {
        "task_name": "test.fail",
        "message": "broken",
        "url_callback": hooked(image_server, "ok", ok),
        "url_errback": hooked(image_server, "err", err),
    }
    [status] = await create_ok(api, definition, block=True)
    await err.wait_for(1)
    assert err.received == [("POST", "application/json", status)]
    assert status["result"] == "broken"
    assert ok.received == []


async def test_a_failing_callback_is_retried_three_times_in_all(
    api: Client, image_server: ImageServer
) -> None:
    hook = Hook(failures=5)
    definition = {
        "task_name": "hello",
        "name": "x",
        "url_callback": hooked(image_server, "h", hook),
    }
    [status] = await create_ok(api, definition, block=True)
    await hook.wait_for(3)
    await asyncio.sleep(2.5)  # longer than any further backoff
    assert len(hook.received) == 3
    assert await current(api, status["key"]) == status


async def test_a_refused_callback_is_not_sent_and_the_task_stands(
    api: Client, other_loopback: ImageServer
) -> None:
    hook = Hook()
    url = hooked(other_loopback, "h", hook)  # loopback, and not in allow_hosts
    [status] = await create_ok(
        api, {"task_name": "hello", "name": "x", "url_callback": url}, block=True
    )
    await asyncio.sleep(0.3)
    assert hook.received == []
    assert (await current(api, status["key"]))["status"] == "success"


async def test_callback_urls_are_validated(idle_api: Client) -> None:
    response = await create(
        idle_api,
        [{"task_name": "hello", "name": "x", "url_callback": "ftp://x", "url_errback": 3}],
    )
    assert response.status == 400
    assert [e["name"] for e in (await response.json())["errors"]] == [
        "tasks.0.url_callback",
        "tasks.0.url_errback",
    ]


async def test_catalog_lists_the_callback_parameters(idle_api: Client) -> None:
    catalog = await (await idle_api.get("/v1/tasks")).json()
    for entry in catalog["tasks"]:
        assert {"url_callback", "url_errback"} <= set(entry["parameters"]["properties"])


async def test_status_keeps_callbacks_out_of_the_result(
    api: Client, image_server: ImageServer
) -> None:
    hook = Hook()
    body = {
        "secret": SECRET,
        "tasks": {
            "task_name": "hello",
            "name": "y",
            "url_callback": hooked(image_server, "h", hook),
        },
        "block": True,
    }
    response = await api.post("/v1/create", data=orjson.dumps(body))
    [status] = await response.json()
    assert set(status) == {"status", "key", "events", "result"}


async def test_cancelling_posts_to_url_errback(idle_api: Client, image_server: ImageServer) -> None:
    hook = Hook()
    definition = {"task_name": "hello", "name": "x", "url_errback": hooked(image_server, "e", hook)}
    [queued] = await create_ok(idle_api, definition)
    response = await idle_api.post("/v1/cancel", json={"secret": SECRET, "tasks": [queued["key"]]})
    [cancelled] = await response.json()
    await hook.wait_for(1)
    assert hook.received == [("POST", "application/json", cancelled)]
    assert cancelled["result"] == "cancelled"
    await idle_api.post("/v1/cancel", json={"secret": SECRET, "tasks": [queued["key"]]})
    await asyncio.sleep(0.3)
    assert len(hook.received) == 1  # only the call that ended it
