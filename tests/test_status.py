"""GET/POST /v1/status: reads by key, blocking, unknown and expired keys."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.conftest import ApiFactory, Client
from tests.helpers import assert_status, create_ok


async def test_get_status_in_request_order(api: Client) -> None:
    statuses = await create_ok(
        api, [{"task_name": "hello", "name": str(i)} for i in range(3)], True
    )
    keys = [s["key"] for s in statuses][::-1]
    response = await api.get("/v1/status", params=[("tasks", k) for k in keys])
    assert response.status == 200
    answer = await response.json()
    assert [s["key"] for s in answer] == keys
    for status in answer:
        assert_status(status)
        assert status["result"].startswith("Hello ")


async def test_comma_separated_keys(api: Client) -> None:
    statuses = await create_ok(api, [{"task_name": "hello", "name": "a"}] * 2, True)
    keys = ",".join(s["key"] for s in statuses)
    response = await api.get("/v1/status", params={"tasks": keys})
    assert len(await response.json()) == 2


async def test_post_status_with_a_key_list(api: Client) -> None:
    statuses = await create_ok(api, [{"task_name": "hello", "name": "a"}] * 3, True)
    body = {"tasks": [s["key"] for s in statuses]}
    response = await api.post("/v1/status", data=orjson.dumps(body))
    assert [s["key"] for s in await response.json()] == body["tasks"]


async def test_status_block_waits_for_the_end(api: Client) -> None:
    [queued] = await create_ok(api, {"task_name": "sleep", "seconds": 0.3, "steps": 3})
    response = await api.get("/v1/status", params={"tasks": queued["key"], "block": "true"})
    [status] = await response.json()
    assert status["status"] == "success"
    assert status["progress"] == 100


async def test_status_block_honours_max_block_seconds(make_api: ApiFactory) -> None:
    client = await make_api(with_worker=False, server={"max_block_seconds": 0.2})
    [queued] = await create_ok(client, {"task_name": "hello", "name": "x"})
    response = await client.get("/v1/status", params={"tasks": queued["key"], "block": "1"})
    assert response.status == 200
    assert (await response.json()) == [queued]


async def test_unknown_keys_are_404_listing_each(api: Client) -> None:
    [known] = await create_ok(api, {"task_name": "hello", "name": "x"})
    unknown = ["A" * 26, "not-a-key"]
    response = await api.get(
        "/v1/status", params=[("tasks", unknown[0]), ("tasks", known["key"]), ("tasks", unknown[1])]
    )
    assert response.status == 404
    assert await response.json() == {
        "status": "error",
        "errors": [
            {"name": "tasks", "location": "querystring", "description": f"unknown task key: {k}"}
            for k in unknown
        ],
    }
    response = await api.post("/v1/status", data=orjson.dumps({"tasks": unknown[:1]}))
    assert response.status == 404
    assert (await response.json())["errors"][0]["location"] == "body"


async def test_missing_tasks_is_400(api: Client) -> None:
    response = await api.get("/v1/status")
    assert response.status == 400
    assert (await response.json())["errors"][0] == {
        "name": "tasks",
        "location": "querystring",
        "description": "tasks is missing",
    }
    response = await api.post("/v1/status", data=orjson.dumps({"tasks": [1, 2]}))
    assert response.status == 400


async def test_records_expire_result_ttl_after_completion(make_api: ApiFactory) -> None:
    client = await make_api(worker={"result_ttl": 1})
    [running] = await create_ok(client, {"task_name": "sleep", "seconds": 1.2, "steps": 1})
    await asyncio.sleep(1.0)
    # Still running after longer than result_ttl: the clock starts at completion.
    response = await client.get("/v1/status", params={"tasks": running["key"]})
    assert (await response.json())[0]["status"] == "executing"
    response = await client.get("/v1/status", params={"tasks": running["key"], "block": "true"})
    assert (await response.json())[0]["status"] == "success"
    await asyncio.sleep(1.5)
    response = await client.get("/v1/status", params={"tasks": running["key"]})
    assert response.status == 404


async def test_status_is_key_only_and_open_to_any_origin(api: Client) -> None:
    [status] = await create_ok(api, {"task_name": "hello", "name": "x"})
    response = await api.get(
        "/v1/status", params={"tasks": status["key"]}, headers={"Origin": "https://anyone.net"}
    )
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("path", ["/v1/status", "/v1/status_stream"])
async def test_a_post_without_tasks_names_them_missing_in_the_body(
    idle_api: Client, path: str
) -> None:
    response = await idle_api.post(path, data=b"{}")
    assert response.status == 400
    assert await response.json() == {
        "status": "error",
        "errors": [{"name": "tasks", "location": "body", "description": "tasks is missing"}],
    }
    response = await idle_api.get(path)
    assert (await response.json())["errors"][0]["location"] == "querystring"
