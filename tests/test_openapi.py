"""GET /v1/openapi.json: a valid OpenAPI 3.1 of every route, which the answers follow."""

from __future__ import annotations

import io
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tests.conftest import SECRET, Client
from tests.helpers import create_ok

METHODS = {"get", "post"}


async def spec_of(client: Client) -> dict[str, Any]:
    response = await client.get("/v1/openapi.json")
    assert response.status == 200
    return dict(await response.json())


async def test_the_spec_is_valid_openapi_3_1(api: Client) -> None:
    spec = await spec_of(api)
    assert spec["openapi"] == "3.1.0"
    validate(spec)


async def test_every_route_is_in_the_spec_and_nothing_else(api: Client) -> None:
    spec = await spec_of(api)
    routes = {
        (route.resource.canonical, route.method.lower())
        for route in api.app.router.routes()
        if route.resource is not None and route.method.lower() in METHODS
    }
    described = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert routes == described


async def test_each_tasks_parameters_come_from_the_registry(api: Client) -> None:
    spec = await spec_of(api)
    sleep = spec["components"]["schemas"]["task.sleep"]
    assert sleep["properties"]["task_name"] == {"const": "sleep"}
    assert sleep["properties"]["seconds"]["maximum"] == 3600
    assert "seconds" in sleep["required"]
    names = {
        o["$ref"].rsplit(".", 1)[-1] for o in spec["components"]["schemas"]["Definition"]["oneOf"]
    }
    assert {"hello", "sleep", ["slurm", "submit"][-1]} <= names


def validator(spec: dict[str, Any], path: str, method: str, status: int, kind: str) -> Any:
    responses = spec["paths"][path][method]["responses"]
    schema = responses[str(status)]["content"][kind]["schema"]
    return Draft202012Validator({**schema, "components": spec["components"]})


async def test_recorded_answers_validate_against_the_spec(api: Client) -> None:
    """A request of each kind, its answer checked against what the spec says of it."""
    spec = await spec_of(api)
    [done] = await create_ok(api, {"task_name": "hello", "name": "spec"}, block=True)
    key = done["key"]
    json = "application/json"
    hello = {"task_name": "hello", "name": "a"}
    exchanges: list[tuple[str, str, Any, dict[str, Any]]] = [
        ("/v1/create", "post", None, {"json": {"secret": SECRET, "tasks": hello}}),
        ("/v1/create", "post", None, {"json": {"secret": SECRET, "tasks": {"task_name": "hello"}}}),
        ("/v1/create", "post", None, {"json": {"secret": "wrong", "tasks": hello}}),
        ("/v1/status", "get", None, {"params": {"tasks": key}}),
        ("/v1/status", "post", None, {"json": {"tasks": [key], "block": True}}),
        ("/v1/status", "get", None, {"params": {"tasks": "A" * 26}}),
        ("/v1/cancel", "post", None, {"json": {"secret": SECRET, "tasks": [key]}}),
        ("/v1/tasks", "get", None, {}),
        ("/v1/health", "get", None, {}),
        ("/v1/upload/{filename}", "post", "/v1/upload/a.txt",
         {"params": {"secret": SECRET}, "data": io.BytesIO(b"x")}),
        ("/v1/file", "get", None, {"params": {"task": key}, "allow_redirects": False}),
        ("/v1/status_stream", "get", None, {"params": {"tasks": key}}),
    ]  # fmt: skip
    checked = 0
    for path, method, concrete, options in exchanges:
        response = await api.request(method.upper(), concrete or path, **options)
        kind = response.headers.get("Content-Type", "").split(";")[0]
        body = await response.read()
        if kind == json:
            validator(spec, path, method, response.status, json).validate(orjson.loads(body))
            checked += 1
        else:
            assert kind in spec["paths"][path][method]["responses"][str(response.status)]["content"]
    assert checked == len(exchanges) - 1  # all but the stream are JSON
