"""Arbitrary JSON at every endpoint: always a JSON answer, never a 500."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SECRET, ApiFactory, Client

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
TASK_NAMES = st.sampled_from(["hello", "sleep", "test.fail", "nope", "", "test.progress"])
DEFINITION = st.fixed_dictionaries(
    {"task_name": TASK_NAMES},
    optional={"name": JSON, "seconds": JSON, "steps": JSON, "values": JSON, "extra": JSON},
)
BODY = st.fixed_dictionaries(
    {},
    optional={
        "secret": st.sampled_from([SECRET, "wrong"]) | JSON,
        "tasks": DEFINITION | st.lists(DEFINITION, max_size=3) | JSON,
        "block": JSON,
        "api_key": JSON,
    },
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def check(status: int, answer: Any) -> None:
    assert status < 500, answer
    if status >= 400:
        assert answer["status"] == "error"
        assert ("errors" in answer) != ("message" in answer)


@FUZZ
@given(body=BODY)
async def test_create_never_fails_on_input(idle_api: Client, body: dict[str, Any]) -> None:
    body = {**body, "block": False} if body.get("block") not in (None, False) else body
    response = await idle_api.post("/v1/create", data=orjson.dumps(body))
    check(response.status, await response.json())


@FUZZ
@given(body=BODY | JSON)
async def test_status_and_cancel_never_fail_on_input(idle_api: Client, body: Any) -> None:
    if isinstance(body, dict) and "block" in body:
        body = {k: v for k, v in body.items() if k != "block"}
    for path in ("/v1/status", "/v1/cancel"):
        response = await idle_api.post(path, data=orjson.dumps(body))
        check(response.status, await response.json())


@FUZZ
@given(
    query=st.lists(
        st.tuples(st.sampled_from(["tasks", "block", "secret", "x"]), st.text(max_size=30)),
        max_size=4,
    )
)
async def test_status_query_never_fails(idle_api: Client, query: list[tuple[str, str]]) -> None:
    query = [(k, v) for k, v in query if k != "block" or v.lower() not in {"true", "1", "yes"}]
    response = await idle_api.get("/v1/status", params=query)
    check(response.status, await response.json())


FORM_NAMES = st.sampled_from(
    ["task_name", "url", "width", "crop", "rotation", "format", "sizes", "secret", "account",
     "expires", "sig", "api_key", "name", "x"]
)  # fmt: skip
FORM_VALUES = st.sampled_from(["image.thumb", "hello", SECRET, "demo", "1", "{}", "[1]"]) | st.text(
    max_size=30
)


@FUZZ
@given(
    query=st.lists(st.tuples(FORM_NAMES, FORM_VALUES), max_size=6),
    filename=st.text(max_size=12),
)
async def test_create_file_and_file_queries_never_fail(
    make_api: ApiFactory, query: list[tuple[str, str]], filename: str
) -> None:
    # No worker and a short wait: a valid request ends in 504 with its status, never a 5xx else.
    api = await make_api(with_worker=False, server={"max_block_seconds": 0.05})
    path = "/v1/create_file" + (f"/{quote(filename, safe='')}" if filename else "")
    for url in (path, "/v1/file"):
        response = await api.get(url, params=query, allow_redirects=False)
        answer = await response.json()
        if response.status == 504:
            assert answer["status"] in ("queued", "executing")
        else:
            check(response.status, answer)


@FUZZ
@given(key=st.text(min_size=1, max_size=30), name=st.text(min_size=1, max_size=20), query=JSON)
async def test_file_urls_never_fail(idle_api: Client, key: str, name: str, query: Any) -> None:
    params = {"expires": str(query)[:20], "sig": str(query)[-20:]}
    path = f"/v1/files/{quote(key, safe='')}/{quote(name, safe='')}"
    response = await idle_api.get(path, params=params)
    check(response.status, await response.json())


# Raw requests, framed well enough for aiohttp's parser (what it refuses itself is answered
# by aiohttp in plain text, see the README), with arbitrary bytes everywhere else.
PATHS = [
    "/v1/create",
    "/v1/create_stream",
    "/v1/status",
    "/v1/status_stream",
    "/v1/stream",
    "/v1/tasks",
    "/v1/cancel",
    "/v1/create_file",
    "/v1/create_file/t.jpg",
    "/v1/file",
    "/v1/file/x",
    "/v1/files/AAAA/x",
    "/v1/upload/x.bin",
    "/v1/health",
    "/v1/openapi.json",
    "/ui/app.js",
    "/nope",
]
HEADER_BYTES = st.binary(max_size=40).map(lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F))
QUERY_BYTES = st.binary(max_size=60).map(
    lambda b: bytes(c for c in b if 0x21 <= c <= 0x7E and c not in b"#")
)
HEADERS = st.lists(  # one of each name: aiohttp refuses some duplicates in its parser
    st.tuples(
        st.sampled_from(
            [
                b"Authorization",
                b"Origin",
                b"Referer",
                b"Content-Type",
                b"Accept",
                b"X-Any",
                b"Cookie",
            ]
        ),
        st.one_of(
            HEADER_BYTES,
            st.sampled_from(
                [b"Secret " + SECRET.encode(), b"Api-Key test-key", b"http://localhost:3000"]
            ),
        ),
    ),
    max_size=4,
    unique_by=lambda header: header[0],
)
BODIES = st.one_of(st.binary(max_size=200), BODY.map(orjson.dumps))
RAW_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5000"))


@pytest.mark.timeout(max(300, RAW_EXAMPLES // 10))  # ~100 requests a second on a busy machine
@settings(
    max_examples=RAW_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from([b"GET", b"POST", b"OPTIONS", b"PUT", b"DELETE"]),
    path=st.sampled_from([p.encode() for p in PATHS]),
    query=QUERY_BYTES,
    headers=HEADERS,
    body=BODIES,
)
async def test_raw_requests_get_json_and_never_a_5xx(
    fuzz_target: tuple[Client, dict[str, Any]],
    method: bytes,
    path: bytes,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    client, _ = fuzz_target
    if method == b"POST" and path in (b"/v1/create", b"/v1/create_stream", b"/v1/create_file"):
        body = body.replace(b'"block":true', b'"block":false')  # nothing waits for a worker
    lines = [method + b" " + path + (b"?" + query if query else b"") + b" HTTP/1.1", b"Host: x"]
    lines += [name + b": " + value for name, value in headers]
    lines += [b"Content-Length: %d" % len(body), b"Connection: close"]
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert status < 500, answer[:300]
    if status >= 400:
        assert b"application/json" in head, answer[:300]
        if b"chunked" not in head.lower():
            check(status, orjson.loads(payload))


@pytest.fixture
async def fuzz_target(
    idle_api: Client, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[tuple[Client, dict[str, Any]]]:
    """A server with one queued task that nothing the fuzzer sends may change, and a log
    that must hold nothing at ERROR afterwards."""
    response = await idle_api.post(
        "/v1/create",
        data=orjson.dumps({"secret": SECRET, "tasks": {"task_name": "sleep", "seconds": 1}}),
    )
    [task] = await response.json()
    yield idle_api, task
    response = await idle_api.get("/v1/status", params={"tasks": task["key"]})
    assert (await response.json())[0] == task  # the fuzzer never knew its key
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
