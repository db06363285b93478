"""POST /v1/create: definitions, statuses, blocking, parameters and their errors."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from tests.conftest import SECRET, ApiFactory, Client
from tests.helpers import assert_status, create, create_ok


async def test_single_definition_answers_a_list_of_one_queued_status(idle_api: Client) -> None:
    [status] = await create_ok(idle_api, {"task_name": "hello", "name": "world"})
    assert_status(status)
    assert status["status"] == "queued"
    assert list(status) == ["status", "key", "events"]
    assert list(status["events"]) == ["queued"]


async def test_list_keeps_request_order_and_keys_are_unique(idle_api: Client) -> None:
    tasks = [{"task_name": "hello", "name": str(i)} for i in range(20)]
    statuses = await create_ok(idle_api, tasks)
    assert len(statuses) == 20
    assert len({s["key"] for s in statuses}) == 20
    response = await idle_api.get("/v1/status", params=[("tasks", s["key"]) for s in statuses])
    assert [s["key"] for s in await response.json()] == [s["key"] for s in statuses]


async def test_block_waits_for_every_result(api: Client) -> None:
    tasks = [
        {"task_name": "hello", "name": "world"},
        {"task_name": "sleep", "seconds": 0.2, "steps": 2},
        {"task_name": "test.fail", "message": "no luck"},
    ]
    hello, sleep, fail = await create_ok(api, tasks, block=True)
    for status in (hello, sleep, fail):
        assert_status(status)
        assert list(status["events"]) == ["queued", "started", "completed"]
    assert hello["status"] == "success"
    assert hello["result"] == "Hello world"
    assert sleep["result"] == 0.2
    assert sleep["progress"] == 100
    assert (fail["status"], fail["result"]) == ("error", "no luck")


async def test_status_key_order_matches_dragon(api: Client) -> None:
    response = await create(api, {"task_name": "sleep", "seconds": 0, "steps": 1}, block=True)
    text = await response.text()
    assert text.startswith('[{"status":"success","key":"')
    assert list(orjson.loads(text)[0]) == ["status", "key", "progress", "events", "result"]
    assert response.content_type == "application/json"


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"task_name": "test.fail"}, "it did not work"),
        ({"task_name": "test.crash"}, "ValueError: first line"),
        ({"task_name": "test.unserializable"}, "TypeError: Type is not JSON serializable: object"),
    ],
)
async def test_failures_are_one_line_errors(
    api: Client, task: dict[str, Any], message: str
) -> None:
    [status] = await create_ok(api, task, block=True)
    assert status["status"] == "error"
    assert status["result"] == message
    assert "\n" not in status["result"]


async def test_job_timeout_ends_in_error(make_api: ApiFactory) -> None:
    client = await make_api(worker={"job_timeout": 0.3})
    [status] = await create_ok(client, {"task_name": "sleep", "seconds": 30}, block=True)
    assert (status["status"], status["result"]) == ("error", "timeout after 0.3 s")
    # The worker goes on with the next task.
    [status] = await create_ok(client, {"task_name": "hello", "name": "again"}, block=True)
    assert status["result"] == "Hello again"


async def test_max_block_seconds_answers_current_statuses(make_api: ApiFactory) -> None:
    client = await make_api(server={"max_block_seconds": 0.3})
    [status] = await create_ok(client, {"task_name": "sleep", "seconds": 20}, block=True)
    assert status["status"] in {"queued", "executing"}
    assert "result" not in status


async def test_idle_worker_is_woken_without_polling(
    make_api: ApiFactory,
) -> None:
    # With an hour between polls, only the wake-up can start these tasks.
    client = await make_api(worker={"poll_interval": 3600})
    for i in range(3):
        [status] = await create_ok(client, {"task_name": "hello", "name": str(i)}, block=True)
        assert status["result"] == f"Hello {i}"
        await asyncio.sleep(0.05)


async def test_a_full_worker_takes_queued_tasks_as_slots_free(make_api: ApiFactory) -> None:
    client = await make_api(worker={"max_jobs": 1, "poll_interval": 3600})
    tasks = [{"task_name": "sleep", "seconds": 0.05, "steps": 1} for _ in range(4)]
    statuses = await create_ok(client, tasks, block=True)
    assert [s["status"] for s in statuses] == ["success"] * 4


@pytest.mark.parametrize("value", [True, 1, "true", "TRUE", "yes", "1"])
async def test_block_accepts_boolean_spellings(api: Client, value: Any) -> None:
    response = await create(api, {"task_name": "hello", "name": "x"}, block=value)
    assert (await response.json())[0]["status"] == "success"


@pytest.mark.parametrize("value", [False, 0, "false", "No", "0"])
async def test_block_false_spellings(idle_api: Client, value: Any) -> None:
    response = await create(idle_api, {"task_name": "hello", "name": "x"}, block=value)
    assert (await response.json())[0]["status"] == "queued"


@pytest.mark.parametrize("value", ["maybe", 2, [], "tru"])
async def test_block_rejects_other_values(idle_api: Client, value: Any) -> None:
    response = await create(idle_api, {"task_name": "hello", "name": "x"}, block=value)
    assert response.status == 400
    assert (await response.json())["errors"][0]["name"] == "block"


async def test_parameters_may_come_in_the_query_string(api: Client) -> None:
    tasks = orjson.dumps([{"task_name": "hello", "name": "query"}]).decode()
    response = await api.post(
        "/v1/create", params={"secret": SECRET, "block": "yes", "tasks": tasks}
    )
    assert (await response.json())[0]["result"] == "Hello query"
    response = await api.post(
        "/v1/create?block=true",
        data=orjson.dumps({"secret": SECRET, "tasks": {"task_name": "hello", "name": "mixed"}}),
    )
    assert (await response.json())[0]["result"] == "Hello mixed"


def error_entries(body: dict[str, Any]) -> list[tuple[str, str]]:
    assert body["status"] == "error"
    return [(e["name"], e["location"]) for e in body["errors"]]


@pytest.mark.parametrize(
    ("tasks", "entries"),
    [
        (None, [("tasks", "body")]),
        ([], [("tasks", "body")]),
        ("hello", [("tasks", "body")]),
        ({"task_name": "hello"}, [("tasks.name", "body")]),
        ({"name": "x"}, [("tasks.task_name", "body")]),
        ({"task_name": "hello", "name": 5}, [("tasks.name", "body")]),
        ({"task_name": "hello", "name": "x", "nmae": "y"}, [("tasks.nmae", "body")]),
        ({"task_name": "sleep", "seconds": "soon"}, [("tasks.seconds", "body")]),
        ({"task_name": "sleep", "seconds": 3601}, [("tasks.seconds", "body")]),
        ({"task_name": "sleep", "seconds": -1}, [("tasks.seconds", "body")]),
        (
            [
                {"task_name": "hello", "name": "ok"},
                {"task_name": "hello"},
                {"task_name": "sleep", "seconds": 1},
                {"task_name": "nope"},
                7,
            ],
            [("tasks.1.name", "body"), ("tasks.3.task_name", "body"), ("tasks.4", "body")],
        ),
    ],
)
async def test_invalid_definitions_are_400_with_every_problem(
    idle_api: Client, tasks: Any, entries: list[tuple[str, str]]
) -> None:
    body: dict[str, Any] = {"secret": SECRET}
    if tasks is not None:
        body["tasks"] = tasks
    response = await idle_api.post("/v1/create", data=orjson.dumps(body))
    assert response.status == 400
    answer = await response.json()
    assert error_entries(answer) == entries
    assert all(e["description"] for e in answer["errors"])


async def test_missing_tasks_description(idle_api: Client) -> None:
    response = await idle_api.post("/v1/create", data=orjson.dumps({"secret": SECRET}))
    assert await response.json() == {
        "status": "error",
        "errors": [{"name": "tasks", "location": "body", "description": "tasks is missing"}],
    }


@pytest.mark.parametrize("body", [b"{", b"[1, 2]", b'"text"', b"\xff\xfe", b"null", b"12"])
async def test_bad_bodies_are_400_body(idle_api: Client, body: bytes) -> None:
    response = await idle_api.post("/v1/create", data=body)
    assert response.status == 400
    assert error_entries(await response.json()) == [("body", "body")]


async def test_bad_json_in_query_tasks(idle_api: Client) -> None:
    response = await idle_api.post("/v1/create", params={"secret": SECRET, "tasks": "[{"})
    assert response.status == 400
    assert error_entries(await response.json()) == [("tasks", "querystring")]


async def test_order_of_checks(make_api: ApiFactory) -> None:
    client = await make_api(with_worker=False, accounts={"demo": {"max_tasks_per_request": 1}})
    # bad JSON comes before credentials
    response = await client.post("/v1/create", data=b"{oops", params={"secret": "wrong"})
    assert response.status == 400
    # credentials come before validation
    response = await client.post(
        "/v1/create", data=orjson.dumps({"secret": "wrong", "tasks": [{"task_name": "nope"}]})
    )
    assert response.status == 401
    # validation comes before limits
    response = await create(client, [{"task_name": "nope"}, {"task_name": "hello"}])
    assert response.status == 400
    response = await create(client, [{"task_name": "hello", "name": "a"}] * 2)
    assert response.status == 401


async def test_task_log_lines_carry_the_key(api: Client, caplog: pytest.LogCaptureFixture) -> None:
    [status] = await create_ok(api, {"task_name": "test.log", "message": "look here"}, block=True)
    [record] = [r for r in caplog.records if r.name == "tasks.test.log"]
    assert record.getMessage() == f"task {status['key']}: look here"
    assert getattr(record, "task_key", None) == status["key"]
