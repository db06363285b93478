"""NDJSON streams: status_stream, its /v1/stream alias, create_stream, heartbeats, departures."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from taskd.events import Listener
from taskd.records import Snapshot
from taskd.web.state import HUB
from tests.conftest import SECRET, ApiFactory, Client
from tests.helpers import assert_status, create_ok, read_lines


async def stream_of(client: Client, keys: list[str], path: str = "/v1/status_stream") -> list[Any]:
    response = await client.get(path, params=[("tasks", k) for k in keys])
    assert response.status == 200
    assert response.content_type == "application/x-ndjson"
    return await read_lines(response)


async def test_status_stream_first_line_then_changes_then_end(api: Client) -> None:
    [queued] = await create_ok(api, {"task_name": "sleep", "seconds": 0.4, "steps": 4})
    first, *changes = await stream_of(api, [queued["key"]])
    assert isinstance(first, list)
    assert [s["key"] for s in first] == [queued["key"]]
    assert changes, "a running task must produce change lines"
    for status in changes:
        assert_status(status)
    assert changes[-1]["status"] == "success"
    progress = [s["progress"] for s in changes if "progress" in s]
    assert progress == sorted(progress)
    assert progress[-1] == 100
    # Events accumulate: every later status carries every earlier event.
    assert changes[-1]["events"]["queued"] == queued["events"]["queued"]
    assert "started" in changes[-1]["events"]


async def test_stream_alias_and_post_form(api: Client) -> None:
    [queued] = await create_ok(api, {"task_name": "sleep", "seconds": 0.1, "steps": 1})
    lines = await stream_of(api, [queued["key"]], "/v1/stream")
    assert lines[-1]["status"] == "success"
    response = await api.post("/v1/status_stream", data=orjson.dumps({"tasks": [queued["key"]]}))
    [first] = await read_lines(response)
    assert first[0]["status"] == "success"


async def test_two_tasks_interleave_and_the_stream_ends_when_both_are_done(api: Client) -> None:
    a, b = await create_ok(
        api,
        [
            {"task_name": "test.progress", "values": [1, 2, 3], "pause": 0.1},
            {"task_name": "test.progress", "values": ["x", "y", "z"], "pause": 0.1},
        ],
    )
    first, *changes = await stream_of(api, [b["key"], a["key"]])
    assert [s["key"] for s in first] == [b["key"], a["key"]]
    keys = [s["key"] for s in changes]
    assert set(keys) == {a["key"], b["key"]}
    # Interleaved: b's lines do not all come after a's, nor before.
    first_b, last_a = keys.index(b["key"]), len(keys) - 1 - keys[::-1].index(a["key"])
    assert first_b < last_a
    ends = [s for s in changes if s["status"] == "success"]
    assert {s["key"] for s in ends} == {a["key"], b["key"]}
    assert changes[-1]["status"] == "success"
    assert [s["progress"] for s in changes if s["key"] == b["key"] and "progress" in s][-1] == "z"


async def test_finished_tasks_give_one_line(api: Client) -> None:
    statuses = await create_ok(api, [{"task_name": "hello", "name": "x"}] * 2, True)
    lines = await stream_of(api, [s["key"] for s in statuses])
    assert lines == [statuses]


async def test_create_stream_single_definition_and_list(api: Client) -> None:
    response = await api.post(
        "/v1/create_stream",
        data=orjson.dumps({"secret": SECRET, "tasks": {"task_name": "hello", "name": "s"}}),
    )
    first, *changes = await read_lines(response)
    assert first[0]["status"] == "queued"
    assert changes[-1]["result"] == "Hello s"
    response = await api.post(
        "/v1/create_stream",
        data=orjson.dumps(
            {"secret": SECRET, "tasks": [{"task_name": "hello", "name": str(i)} for i in range(5)]}
        ),
    )
    first, *changes = await read_lines(response)
    assert len(first) == 5
    done = {s["key"]: s["result"] for s in changes if s["status"] == "success"}
    assert done == {s["key"]: f"Hello {i}" for i, s in enumerate(first)}


async def test_create_stream_errors_are_plain_json(api: Client) -> None:
    response = await api.post("/v1/create_stream", data=orjson.dumps({"secret": SECRET}))
    assert response.status == 400
    assert response.content_type == "application/json"
    response = await api.post("/v1/create_stream", data=orjson.dumps({"tasks": []}))
    assert response.status == 401


async def test_unknown_key_stream_is_404(api: Client) -> None:
    response = await api.get("/v1/status_stream", params={"tasks": "B" * 26})
    assert response.status == 404
    assert (await response.json())["errors"][0]["description"] == f"unknown task key: {'B' * 26}"


async def test_heartbeat_resends_unfinished_status(make_api: ApiFactory) -> None:
    client = await make_api(server={"heartbeat": 0.1})
    [queued] = await create_ok(client, {"task_name": "sleep", "seconds": 0.8, "steps": 1})
    _, *changes = await stream_of(client, [queued["key"]])
    executing = [s for s in changes if s["status"] == "executing"]
    # steps=1 publishes progress 0 then 100: anything more is a heartbeat repeating a status.
    assert len(executing) >= 4
    assert changes[-1]["status"] == "success"


async def test_client_leaving_mid_stream_releases_its_subscription(api: Client) -> None:
    hub = api.app[HUB] if api.app else None
    assert hub is not None
    [queued] = await create_ok(api, {"task_name": "sleep", "seconds": 30, "steps": 1})
    response = await api.get("/v1/status_stream", params={"tasks": queued["key"]})
    assert await response.content.readline()
    assert len(hub.subscriptions) == 1
    response.close()
    for _ in range(100):
        if not hub.subscriptions:
            break
        await asyncio.sleep(0.02)
    assert hub.subscriptions == {}
    # The server is fine and the task still runs.
    [status] = await create_ok(api, {"task_name": "hello", "name": "after"}, True)
    assert status["result"] == "Hello after"
    response = await api.get("/v1/status", params={"tasks": queued["key"]})
    assert (await response.json())[0]["status"] == "executing"


async def test_200_simultaneous_streams(make_api: ApiFactory) -> None:
    client = await make_api(accounts={"demo": {"max_tasks_per_request": 200}})
    statuses = await create_ok(
        client, [{"task_name": "sleep", "seconds": 0.5, "steps": 2} for _ in range(20)]
    )
    keys = [s["key"] for s in statuses]
    streams = [stream_of(client, [keys[i % 20], keys[(i + 7) % 20]]) for i in range(200)]
    results = await asyncio.gather(*streams)
    for lines in results:
        finals = {s["key"] for s in lines[1:] if s["status"] == "success"} | {
            s["key"] for s in lines[0] if s["status"] == "success"
        }
        assert len(finals) == 2
    hub = client.app[HUB] if client.app else None
    assert hub is not None
    assert hub.subscriptions == {}


async def test_hub_survives_a_lost_connection(api: Client, settings: Any) -> None:
    import redis.asyncio as aioredis

    [queued] = await create_ok(api, {"task_name": "sleep", "seconds": 0.6, "steps": 3})
    response = await api.get("/v1/status_stream", params={"tasks": queued["key"]})
    assert await response.content.readline()
    async with aioredis.Redis.from_url(settings.redis.url) as admin:
        killed = await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    assert killed >= 1
    lines = await read_lines(response)
    assert lines[-1]["status"] == "success"


async def test_a_listener_behind_a_burst_of_changes_keeps_every_tasks_newest() -> None:
    keys = [f"K{i}" for i in range(300)]
    listener = Listener(keys)
    for key in keys:
        listener.seed(key, Snapshot(1, b'{"status":"queued"}'))
    for version, status in ((2, b"executing"), (3, b"success")):
        for key in keys:  # nobody reads meanwhile
            listener.offer(key, Snapshot(version, b'{"status":"' + status + b'"}'))
    taken = [await listener.next_change(1) for _ in keys]
    assert sorted(change[0] for change in taken if change) == sorted(keys)
    assert listener.all_terminal()
    assert await listener.next_change(0.01) is None


async def test_streams_of_many_tasks_ending_at_once_all_end(make_api: ApiFactory) -> None:
    api = await make_api(worker={"max_jobs": 50})
    lists = [
        await create_ok(api, [{"task_name": "hello", "name": f"{n}.{i}"} for i in range(100)])
        for n in range(5)
    ]
    streams = [stream_of(api, [s["key"] for s in statuses]) for statuses in lists]
    for lines in await asyncio.gather(*streams):
        final = {s["key"]: s for s in lines[0]}
        final.update({s["key"]: s for s in lines[1:]})
        assert [s["status"] for s in final.values()] == ["success"] * 100
