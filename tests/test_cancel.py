"""POST /v1/cancel: queued tasks never start, running ones are aborted, only by their account."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from taskd.settings import Settings
from tests.conftest import OTHER_SECRET, SECRET, Client, WorkerFactory
from tests.helpers import assert_status, create_ok


async def cancel(client: Client, keys: list[str], secret: str = SECRET) -> tuple[int, Any]:
    response = await client.post("/v1/cancel", data=orjson.dumps({"secret": secret, "tasks": keys}))
    return response.status, await response.json()


async def test_cancel_queued_task_never_starts(
    idle_api: Client, settings: Settings, start_worker: WorkerFactory
) -> None:
    [queued] = await create_ok(idle_api, {"task_name": "hello", "name": "x"})
    status, [cancelled] = await cancel(idle_api, [queued["key"]])
    assert status == 200
    assert_status(cancelled)
    assert (cancelled["status"], cancelled["result"]) == ("error", "cancelled")
    assert list(cancelled["events"]) == ["queued", "completed"]
    await start_worker(settings)
    # A task queued after it runs; the cancelled one stays as it was.
    [later] = await create_ok(idle_api, {"task_name": "hello", "name": "y"}, block=True)
    assert later["status"] == "success"
    response = await idle_api.get("/v1/status", params={"tasks": queued["key"]})
    assert await response.json() == [cancelled]


async def test_cancel_running_task_aborts_it(api: Client) -> None:
    [queued] = await create_ok(api, {"task_name": "sleep", "seconds": 30, "steps": 30})
    response = await api.get("/v1/status_stream", params={"tasks": queued["key"]})
    await response.content.readline()
    while True:  # wait until it runs
        line = orjson.loads(await response.content.readline())
        if line["status"] == "executing":
            break
    status, [cancelled] = await cancel(api, [queued["key"]])
    assert status == 200
    assert (cancelled["status"], cancelled["result"]) == ("error", "cancelled")
    assert list(cancelled["events"]) == ["queued", "started", "completed"]
    rest = [orjson.loads(line) async for line in response.content if line.strip()]
    assert rest[-1] == cancelled
    # The abort reached the worker: no more progress is published, and it takes new work.
    await asyncio.sleep(1.2)
    response = await api.get("/v1/status", params={"tasks": queued["key"]})
    assert await response.json() == [cancelled]
    [after] = await create_ok(api, {"task_name": "hello", "name": "z"}, block=True)
    assert after["status"] == "success"


async def test_cancel_finished_task_leaves_it_unchanged(api: Client) -> None:
    [done] = await create_ok(api, {"task_name": "hello", "name": "x"}, block=True)
    status, answer = await cancel(api, [done["key"]])
    assert (status, answer) == (200, [done])


async def test_cancel_of_another_accounts_task_is_403(idle_api: Client) -> None:
    [queued] = await create_ok(idle_api, {"task_name": "hello", "name": "x"})
    status, answer = await cancel(idle_api, [queued["key"]], secret=OTHER_SECRET)
    assert status == 403
    assert answer == {
        "status": "error",
        "message": f"task {queued['key']} belongs to another account",
    }
    response = await idle_api.get("/v1/status", params={"tasks": queued["key"]})
    assert (await response.json())[0]["status"] == "queued"


async def test_cancel_unknown_key_is_404_in_body(idle_api: Client) -> None:
    status, answer = await cancel(idle_api, ["C" * 26])
    assert status == 404
    assert answer["errors"] == [
        {"name": "tasks", "location": "body", "description": f"unknown task key: {'C' * 26}"}
    ]


async def test_cancel_needs_credentials(idle_api: Client) -> None:
    [queued] = await create_ok(idle_api, {"task_name": "hello", "name": "x"})
    response = await idle_api.post("/v1/cancel", data=orjson.dumps({"tasks": [queued["key"]]}))
    assert response.status == 401
