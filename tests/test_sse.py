"""Server-Sent Events on /v1/status_stream and /v1/stream (`Accept: text/event-stream`)."""

from __future__ import annotations

from typing import Any

import orjson

from tests.conftest import ApiFactory, Client
from tests.helpers import create_ok

SSE = {"Accept": "text/event-stream"}


def parse_events(text: str) -> list[dict[str, Any]]:
    """The events of an SSE body as an EventSource sees them (comments kept, as `comment`)."""
    events = []
    for block in text.split("\n\n"):
        if not block:
            continue
        event: dict[str, Any] = {}
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "":
                event["comment"] = value
            elif field == "data":
                event["data"] = event.get("data", "") + value
            else:
                event[field] = value
        events.append(event)
    return events


async def sse(
    client: Client, keys: list[str], path: str = "/v1/status_stream", **headers: str
) -> tuple[str, list[dict[str, Any]]]:
    response = await client.get(path, params={"tasks": keys}, headers={**SSE, **headers})
    assert response.status == 200
    return response.headers["Content-Type"], parse_events(await response.text())


async def test_a_stream_as_events_snapshot_changes_with_ids_then_end(api: Client) -> None:
    [task] = await create_ok(api, {"task_name": "sleep", "seconds": 0.3, "steps": 3})
    content_type, events = await sse(api, [task["key"]])
    assert content_type.startswith("text/event-stream")
    first, *changes, end = events
    assert first["event"] == "snapshot"
    assert first["retry"] == "1000"
    [snapshot] = orjson.loads(first["data"])
    assert snapshot["key"] == task["key"]
    assert end == {"event": "end", "data": "end"}
    statuses = [orjson.loads(e["data"]) for e in changes]
    assert statuses[-1]["status"] == "success"
    assert statuses[-1]["progress"] == 100
    versions = [int(e["id"].split(".")[1]) for e in changes]
    assert all(e["id"].split(".")[0] == task["key"] for e in changes)
    assert versions == sorted(set(versions))  # increasing with every change of the task
    assert "event" not in changes[0]  # changes are plain `message` events


async def test_finished_tasks_give_a_snapshot_and_the_end_at_once(api: Client) -> None:
    [task] = await create_ok(api, {"task_name": "hello", "name": "sse"}, block=True)
    for path in ("/v1/status_stream", "/v1/stream"):
        _, events = await sse(api, [task["key"]], path)
        assert [e.get("event") for e in events] == ["snapshot", "end"]
        assert orjson.loads(events[0]["data"]) == [task]


async def test_last_event_id_starts_again_from_a_snapshot(api: Client) -> None:
    [task] = await create_ok(api, {"task_name": "hello", "name": "again"}, block=True)
    _, events = await sse(api, [task["key"]], **{"Last-Event-ID": f"{task['key']}.2"})
    assert events[0]["event"] == "snapshot"
    assert orjson.loads(events[0]["data"]) == [task]


async def test_heartbeats_are_comments(make_api: ApiFactory) -> None:
    client = await make_api(server={"heartbeat": 0.2})
    [task] = await create_ok(client, {"task_name": "sleep", "seconds": 1, "steps": 1})
    _, events = await sse(client, [task["key"]])
    comments = [e for e in events if "comment" in e]
    assert comments
    assert all(e == {"comment": "heartbeat"} for e in comments)
    assert events[-1]["event"] == "end"


async def test_ndjson_stays_the_default(api: Client) -> None:
    [task] = await create_ok(api, {"task_name": "hello", "name": "nd"}, block=True)
    response = await api.get("/v1/status_stream", params={"tasks": task["key"]})
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    assert orjson.loads((await response.read()).splitlines()[0]) == [task]


async def test_unknown_keys_are_still_a_json_404(api: Client) -> None:
    response = await api.get("/v1/status_stream", params={"tasks": "A" * 26}, headers=SSE)
    assert response.status == 404
    assert (await response.json())["status"] == "error"
