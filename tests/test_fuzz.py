"""Arbitrary JSON at every endpoint: always a JSON answer, never a 500."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
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
