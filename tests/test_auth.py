"""Credentials, referrer whitelists, CORS and account limits, over HTTP."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import (
    API_KEY,
    OTHER_SECRET,
    SECRET,
    ApiFactory,
    Client,
)

HELLO = {"task_name": "hello", "name": "x"}


async def post_create(client: Client, body: dict[str, Any], **kwargs: Any) -> tuple[int, Any]:
    response = await client.post(
        "/v1/create", data=orjson.dumps({"tasks": HELLO, **body}), **kwargs
    )
    return response.status, await response.json()


@pytest.mark.parametrize(
    ("body", "kwargs"),
    [
        ({"secret": SECRET}, {}),
        ({}, {"params": {"secret": SECRET}}),
        ({}, {"headers": {"Authorization": f"Secret {SECRET}"}}),
        ({"api_key": API_KEY}, {"headers": {"Origin": "https://example.com"}}),
        ({}, {"params": {"api_key": API_KEY}, "headers": {"Referer": "https://example.com/page"}}),
        (
            {},
            {"headers": {"Authorization": f"Api-Key {API_KEY}", "Origin": "https://a.example.org"}},
        ),
    ],
)
async def test_accepted_credentials(idle_api: Client, body: dict[str, Any], kwargs: Any) -> None:
    status, answer = await post_create(idle_api, body, **kwargs)
    assert status == 200, answer
    assert answer[0]["status"] == "queued"


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        ({}, {}, "missing credentials: give a secret, an API key or a signature"),
        ({"secret": "wrong"}, {}, "invalid secret"),
        ({}, {"Authorization": "Secret wrong"}, "invalid secret"),
        ({"api_key": "wrong"}, {"Origin": "https://example.com"}, "invalid API key"),
        ({"api_key": API_KEY}, {}, "an API key needs a Referer or Origin header"),
        ({"api_key": SECRET}, {"Origin": "https://example.com"}, "invalid API key"),
        ({"secret": API_KEY}, {}, "invalid secret"),
    ],
)
async def test_refused_credentials(
    idle_api: Client, body: dict[str, Any], headers: dict[str, str], message: str
) -> None:
    status, answer = await post_create(idle_api, body, headers=headers)
    assert status == 401
    assert answer == {"status": "error", "message": message}


@pytest.mark.parametrize(
    "origin",
    [
        "https://example.com.evil.net",  # the whitelisted host as a prefix
        "https://evilexample.com",  # as a suffix
        "https://example.com@evil.net",  # as userinfo
        "https://evil.net/?https://example.com",  # in the query
        "https://evil.net/https://example.com",  # in the path
        "http://example.com",  # another scheme
        "https://example.com:8443",  # another port
        "https://example.org",  # the bare domain of a *. pattern
        "https://example.org.evil.net",
        "null",
        "garbage",
    ],
)
async def test_referrer_traps_are_refused(idle_api: Client, origin: str) -> None:
    for header in ("Origin", "Referer"):
        status, answer = await post_create(idle_api, {"api_key": API_KEY}, headers={header: origin})
        assert status == 401, (header, origin)
        assert answer["status"] == "error"


async def test_origin_is_checked_before_referer(idle_api: Client) -> None:
    headers = {"Origin": "https://evil.net", "Referer": "https://example.com/"}
    status, _ = await post_create(idle_api, {"api_key": API_KEY}, headers=headers)
    assert status == 401


async def test_cors_on_create_for_a_whitelisted_origin(idle_api: Client) -> None:
    response = await idle_api.post(
        "/v1/create",
        data=orjson.dumps({"api_key": API_KEY, "tasks": HELLO}),
        headers={"Origin": "https://deep.sub.example.org"},
    )
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://deep.sub.example.org"
    assert "Origin" in response.headers.getall("Vary")


async def test_cors_absent_for_other_origins_on_create(idle_api: Client) -> None:
    response = await idle_api.post(
        "/v1/create",
        data=orjson.dumps({"secret": SECRET, "tasks": HELLO}),
        headers={"Origin": "https://evil.net"},
    )
    assert response.status == 200  # a secret needs no origin; the browser gets no CORS
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_preflight_for_creating_endpoints(idle_api: Client) -> None:
    headers = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    response = await idle_api.options("/v1/create", headers=headers)
    assert response.status < 300
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert "Origin" in response.headers.getall("Vary")
    response = await idle_api.options(
        "/v1/create", headers={**headers, "Origin": "https://evil.net"}
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


@pytest.mark.parametrize("path", ["/v1/status", "/v1/status_stream", "/v1/stream", "/v1/tasks"])
async def test_preflight_for_key_only_endpoints_any_origin(idle_api: Client, path: str) -> None:
    headers = {"Origin": "https://anyone.net", "Access-Control-Request-Method": "GET"}
    response = await idle_api.options(path, headers=headers)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"


async def test_max_tasks_per_request(make_api: ApiFactory) -> None:
    client = await make_api(with_worker=False, accounts={"demo": {"max_tasks_per_request": 3}})
    response = await client.post(
        "/v1/create", data=orjson.dumps({"secret": SECRET, "tasks": [HELLO] * 4})
    )
    assert response.status == 401
    assert await response.json() == {
        "status": "error",
        "message": "account limit reached: max_tasks_per_request (3)",
    }
    assert "Retry-After" not in response.headers
    status, _ = await post_create(client, {"secret": SECRET, "tasks": [HELLO] * 3})
    assert status == 200


async def test_rate_per_minute_counts_the_new_tasks(make_api: ApiFactory) -> None:
    client = await make_api(with_worker=False, accounts={"demo": {"rate_per_minute": 5}})
    status, _ = await post_create(client, {"secret": SECRET, "tasks": [HELLO] * 3})
    assert status == 200
    response = await client.post(
        "/v1/create", data=orjson.dumps({"secret": SECRET, "tasks": [HELLO] * 3})
    )
    assert response.status == 401
    assert (await response.json())["message"] == "account limit reached: rate_per_minute (5)"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    status, _ = await post_create(client, {"secret": SECRET, "tasks": [HELLO] * 2})
    assert status == 200
    # Another account has its own budget.
    status, _ = await post_create(client, {"secret": OTHER_SECRET})
    assert status == 200


async def test_max_pending_counts_pending_plus_new(make_api: ApiFactory) -> None:
    client = await make_api(with_worker=False, accounts={"demo": {"max_pending": 2}})
    response = await client.post(
        "/v1/create", data=orjson.dumps({"secret": SECRET, "tasks": [HELLO] * 3})
    )
    assert response.status == 401
    assert "Retry-After" not in response.headers  # 3 can never fit in 2
    status, answer = await post_create(client, {"secret": SECRET, "tasks": [HELLO] * 2})
    assert status == 200
    response = await client.post(
        "/v1/create", data=orjson.dumps({"secret": SECRET, "tasks": HELLO})
    )
    assert response.status == 401
    assert await response.json() == {
        "status": "error",
        "message": "account limit reached: max_pending (2)",
    }
    assert response.headers["Retry-After"] == "1"
    # Cancelling frees the slots.
    await client.post(
        "/v1/cancel",
        data=orjson.dumps({"secret": SECRET, "tasks": [s["key"] for s in answer]}),
    )
    status, _ = await post_create(client, {"secret": SECRET})
    assert status == 200


async def test_limits_allow_retry_after_completion(
    make_api: ApiFactory,
) -> None:
    client = await make_api(accounts={"demo": {"max_pending": 1}})
    for _ in range(3):
        status, answer = await post_create(client, {"secret": SECRET, "block": True})
        assert status == 200
        assert answer[0]["status"] == "success"
