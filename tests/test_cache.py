"""The result cache of GET /v1/create_file: reuse within cache_ttl, coalescing, no reuse of
failures, per account."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import redis.asyncio as aioredis
from yarl import URL

from taskd.settings import Settings
from taskd.signing import EXPIRES, sign_url
from tests.conftest import OTHER_SECRET, SECRET, ApiFactory, Client, ClientFactory
from tests.images import ImageServer, jpeg


async def task_count(settings: Settings) -> int:
    async with aioredis.Redis.from_url(settings.redis.url) as redis:
        return len([k async for k in redis.scan_iter("taskd:task:*")])


def thumb(url: str, secret: str = SECRET, **extra: Any) -> dict[str, str]:
    return {"task_name": "image.thumb", "url": url, "secret": secret, **extra}


async def test_fifty_identical_img_requests_run_one_task(
    api: Client, image_server: ImageServer, settings: Settings
) -> None:
    url = image_server.add("cat.jpg", jpeg(1000, 800))
    responses = await asyncio.gather(
        *(api.get("/v1/create_file/cat.jpg", params=thumb(url)) for _ in range(50))
    )
    bodies = {await r.read() for r in responses}
    assert [r.status for r in responses] == [200] * 50
    assert len(bodies) == 1
    assert image_server.hits == {"cat.jpg": 1}
    assert await task_count(settings) == 1


async def test_a_cached_result_needs_no_worker(
    api: Client, image_server: ImageServer, settings: Settings, make_client: ClientFactory
) -> None:
    url = image_server.add("a.jpg", jpeg(100, 100))
    first = await api.get("/v1/create_file", params=thumb(url, width="10"))
    assert first.status == 200
    no_worker = await make_client(settings)  # same Redis and storage, nothing to run tasks
    # Same definition, other parameter order and spelling of the same values.
    again = await no_worker.get(
        "/v1/create_file?width=10&secret=test-secret&url=" + url + "&task_name=image.thumb",
        allow_redirects=False,
    )
    assert again.status == 302
    assert image_server.hits == {"a.jpg": 1}
    location = URL(again.headers["Location"]).path_qs
    assert await (await no_worker.get(location)).read() == await first.read()


async def test_other_accounts_and_other_parameters_are_not_shared(
    api: Client, image_server: ImageServer, settings: Settings
) -> None:
    url = image_server.add("b.jpg", jpeg(100, 100))
    for params in (thumb(url), thumb(url, OTHER_SECRET), thumb(url, width="20"), thumb(url)):
        assert (await api.get("/v1/create_file", params=params)).status == 200
    assert await task_count(settings) == 3


async def test_failures_are_not_reused(api: Client, settings: Settings) -> None:
    params = {"task_name": "test.fail", "message": "nope", "secret": SECRET}
    for _ in range(2):
        assert (await api.get("/v1/create_file", params=params)).status == 400
    assert await task_count(settings) == 2


async def test_cache_ttl_bounds_reuse(
    make_api: ApiFactory, image_server: ImageServer, settings: Settings
) -> None:
    api = await make_api(storage={"cache_ttl": 1})
    url = image_server.add("c.jpg", jpeg(50, 50))
    for _ in range(2):
        assert (await api.get("/v1/create_file", params=thumb(url))).status == 200
    assert image_server.hits == {"c.jpg": 1}
    await asyncio.sleep(1.2)
    assert (await api.get("/v1/create_file", params=thumb(url))).status == 200
    assert image_server.hits == {"c.jpg": 2}


async def test_cache_ttl_zero_turns_the_cache_off(
    make_api: ApiFactory, image_server: ImageServer, settings: Settings
) -> None:
    api = await make_api(storage={"cache_ttl": 0})
    url = image_server.add("d.jpg", jpeg(50, 50))
    for _ in range(3):
        assert (await api.get("/v1/create_file", params=thumb(url))).status == 200
    assert image_server.hits == {"d.jpg": 3}


async def test_post_create_file_is_never_cached(api: Client, image_server: ImageServer) -> None:
    url = image_server.add("e.jpg", jpeg(50, 50))
    body = {"secret": SECRET, "task": {"task_name": "image.thumb", "url": url}}
    for _ in range(2):
        assert (await api.post("/v1/create_file", json=body)).status == 200
    assert image_server.hits == {"e.jpg": 2}


async def test_a_repeated_request_never_outlives_its_signature(
    api: Client, image_server: ImageServer
) -> None:
    url = image_server.add("f.jpg", jpeg(50, 50))
    unsigned = f"/v1/create_file/f.jpg?task_name=image.thumb&url={quote(url, safe='')}"
    expires = [("account", "demo"), (EXPIRES, str(int(time.time()) + 2))]
    signed = sign_url(unsigned, SECRET.encode(), expires)
    for _ in range(2):
        assert (await api.get(signed, allow_redirects=False)).status == 302
    await asyncio.sleep(2.5)
    response = await api.get(signed, allow_redirects=False)
    assert response.status == 401
    assert (await response.json())["message"] == "signed URL expired"
    # The same query with a wrong secret is not answered from the remembered redirect.
    wrong = await api.get(f"{unsigned}&secret=nope", allow_redirects=False)
    assert wrong.status == 401
    assert image_server.hits == {"f.jpg": 1}
