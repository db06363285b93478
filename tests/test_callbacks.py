"""url_callback / url_errback: the final status POSTed, retried, never changing the task."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from typing import Any

import orjson
from aiohttp import web

from tests.conftest import SECRET, ApiFactory, Client
from tests.helpers import create, create_ok
from tests.images import ImageServer


class Hook:
    """An endpoint that records what it is sent, failing the first `failures` times."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[tuple[str, str, Any]] = []
        self.deliveries: list[tuple[dict[str, str], bytes]] = []  # headers, raw body

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        self.received.append((request.method, request.content_type, await request.json()))
        self.deliveries.append((dict(request.headers), await request.read()))
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


def verify(headers: dict[str, str], body: bytes, secret: str, tolerance: float = 300) -> bool:
    """A receiver's check, written from the Standard Webhooks text (as in the README)."""
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    message_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False  # too old (or from the future): a replay
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.removeprefix("v1,") for s in headers["webhook-signature"].split()]
    return any(hmac.compare_digest(expected, g) for g in given)


async def test_callbacks_are_signed_with_a_webhook_id_stable_across_retries(
    api: Client, image_server: ImageServer
) -> None:
    hook = Hook(failures=2)
    definition = {
        "task_name": "hello",
        "name": "signed",
        "url_callback": hooked(image_server, "s", hook),
    }
    [status] = await create_ok(api, definition, block=True)
    await hook.wait_for(3)
    ids = {headers["webhook-id"] for headers, _ in hook.deliveries}
    assert ids == {f"msg_{status['key']}"}
    for headers, body in hook.deliveries:
        assert orjson.loads(body) == status
        assert verify(headers, body, SECRET)
        assert not verify(headers, body, "another secret")
        assert not verify(headers, body + b" ", SECRET)


async def test_an_account_webhook_secret_signs_its_callbacks(
    make_api: ApiFactory, image_server: ImageServer
) -> None:
    whsec = "whsec_" + base64.b64encode(b"sixteen byte key").decode()
    api = await make_api(accounts={"demo": {"webhook_secret": whsec}})
    ok, err = Hook(), Hook()
    definition = {
        "task_name": "test.fail",
        "url_callback": hooked(image_server, "ok2", ok),
        "url_errback": hooked(image_server, "err2", err),
    }
    [status] = await create_ok(api, definition, block=True)
    await err.wait_for(1)
    [(headers, body)] = err.deliveries
    assert status["status"] == "error"
    assert verify(headers, body, whsec)
    assert not verify(headers, body, SECRET)
    assert ok.received == []


async def test_the_signature_covers_the_id_and_the_timestamp(
    api: Client, image_server: ImageServer
) -> None:
    hook = Hook()
    definition = {
        "task_name": "hello",
        "name": "t",
        "url_callback": hooked(image_server, "t", hook),
    }
    await create_ok(api, definition, block=True)
    await hook.wait_for(1)
    [(headers, body)] = hook.deliveries
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert verify(headers, body, SECRET)
    moved = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}
    assert not verify(moved, body, SECRET)
    renamed = {**headers, "webhook-id": headers["webhook-id"] + "x"}
    assert not verify(renamed, body, SECRET)
