"""Every error is JSON in the documented shape; bad input never reaches a 500."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import orjson
import pytest

from taskd.redis_server import RedisServer
from tests.conftest import SECRET, ApiFactory, Client, ClientFactory, SettingsFactory, free_port


async def test_unknown_path_is_json_404(idle_api: Client) -> None:
    response = await idle_api.get("/v1/nothing")
    assert response.status == 404
    assert await response.json() == {"status": "error", "message": "not found: /v1/nothing"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/create"), ("PUT", "/v1/status"), ("POST", "/v1/tasks"), ("GET", "/v1/cancel")],
)
async def test_wrong_method_is_json_405(idle_api: Client, method: str, path: str) -> None:
    response = await idle_api.request(method, path)
    assert response.status == 405
    body = await response.json()
    assert body["status"] == "error"
    assert method in body["message"]
    assert "Allow" in response.headers


async def test_oversized_body_is_json_413(make_api: ApiFactory) -> None:
    client = await make_api(with_worker=False, server={"max_body_bytes": 1000})
    body = orjson.dumps({"secret": SECRET, "tasks": {"task_name": "hello", "name": "x" * 2000}})
    response = await client.post("/v1/create", data=body)
    assert response.status == 413
    assert await response.json() == {
        "status": "error",
        "message": "request body too large (at most 1000 bytes)",
    }


GARBAGE = [
    {"secret": SECRET, "tasks": [None]},
    {"secret": SECRET, "tasks": {"task_name": None}},
    {"secret": SECRET, "tasks": {"task_name": ["hello"]}},
    {"secret": SECRET, "tasks": {"task_name": "hello", "name": {"$gt": ""}}},
    {"secret": SECRET, "tasks": {"task_name": "sleep", "seconds": 1, "steps": 1.5}},
    {"secret": SECRET, "tasks": {"task_name": "sleep", "seconds": "NaN"}},
    {"secret": 5, "tasks": {"task_name": "hello", "name": "x"}},
    {"secret": SECRET, "api_key": ["a"], "tasks": []},
    {"secret": SECRET, "tasks": "x" * 100, "block": {"a": 1}},
]


@pytest.mark.parametrize(
    "body",
    [orjson.dumps(b) for b in GARBAGE]
    + [b'{"secret": "%s", "tasks": {"task_name": "sleep", "seconds": 1e400}}' % SECRET.encode()],
)
async def test_garbage_is_4xx_json(idle_api: Client, body: bytes) -> None:
    response = await idle_api.post("/v1/create", data=body)
    assert 400 <= response.status < 500
    answer = await response.json()
    assert answer["status"] == "error"


@pytest.mark.parametrize(
    "query",
    [{"tasks": ""}, {"tasks": ","}, {"tasks": "x" * 5000}, {"tasks": "K", "block": "perhaps"}],
)
async def test_status_garbage_is_4xx_json(idle_api: Client, query: dict[str, str]) -> None:
    response = await idle_api.get("/v1/status", params=query)
    assert 400 <= response.status < 500
    assert (await response.json())["status"] == "error"


async def test_catalog_lists_every_task_with_a_schema(idle_api: Client) -> None:
    response = await idle_api.get("/v1/tasks")
    assert response.status == 200
    catalog = {t["name"]: t for t in (await response.json())["tasks"]}
    assert {"hello", "sleep"} <= set(catalog)
    hello = catalog["hello"]
    assert set(hello) == {"name", "description", "parameters", "files"}
    assert hello["parameters"]["required"] == ["name"]
    assert hello["parameters"]["properties"]["name"]["type"] == "string"
    assert hello["files"] is None
    sleep = catalog["sleep"]["parameters"]["properties"]
    assert sleep["seconds"]["maximum"] == 3600
    assert sleep["steps"]["default"] == 10
    assert catalog["sleep"]["description"]


async def test_lost_redis_is_a_json_503(
    make_settings: SettingsFactory, make_client: ClientFactory, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "doomed", port=free_port()).start()
    try:
        client = await make_client(make_settings(redis={"url": server.url}))
    finally:
        server.stop()
    response = await client.get("/v1/status", params={"tasks": "A" * 26})
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert (await response.json())["status"] == "error"
    response = await client.post(
        "/v1/create",
        data=orjson.dumps({"secret": SECRET, "tasks": {"task_name": "hello", "name": "x"}}),
    )
    assert response.status == 503


async def test_undecodable_compressed_body_is_400(idle_api: Client) -> None:
    response = await idle_api.post(
        "/v1/create", data=b"not gzip at all", headers={"Content-Encoding": "gzip"}
    )
    assert response.status == 400
    [entry] = (await response.json())["errors"]
    assert (entry["name"], entry["location"]) == ("body", "body")
    assert entry["description"] == "unreadable body: Can not decode content-encoding: gzip"


async def test_gzip_body_is_read(api: Client) -> None:
    body = gzip.compress(
        orjson.dumps(
            {"secret": SECRET, "block": True, "tasks": {"task_name": "hello", "name": "z"}}
        )
    )
    response = await api.post("/v1/create", data=body, headers={"Content-Encoding": "gzip"})
    assert (await response.json())[0]["result"] == "Hello z"


async def test_server_started_before_redis_answers_once_it_is_up(
    make_settings: SettingsFactory, make_client: ClientFactory, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "late", port=free_port())
    client = await make_client(make_settings(redis={"url": server.url}))
    response = await client.get("/v1/status", params={"tasks": "A" * 26})
    assert response.status == 503
    server.start()
    try:
        for _ in range(100):
            response = await client.get("/v1/status", params={"tasks": "A" * 26})
            if response.status != 503:
                break
            await asyncio.sleep(0.05)
        assert response.status == 404
    finally:
        server.stop()
