"""The guarded fetcher: what it refuses (without connecting), caps and reports."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from taskd.fetch import Fetcher, FetchError, FetchRefused, non_public
from taskd.settings import FetchSettings
from tests.conftest import Client
from tests.helpers import create_ok
from tests.images import ImageServer, jpeg


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(FetchSettings(allow_hosts=["127.0.0.1"], max_bytes=10_000)) as f:
        yield f


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
        # IPv6 that embeds or reaches IPv4: 6to4 of 127.0.0.1, NAT64 of 10.0.0.1, Teredo.
        ("2002:7f00:1::", "transition (IPv4-embedding)"),
        ("64:ff9b::a00:1", "transition (IPv4-embedding)"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "transition (IPv4-embedding)"),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert non_public(ipaddress.ip_address(address)) == kind


async def test_loopback_is_refused_without_connecting(
    other_loopback: ImageServer, fetcher: Fetcher
) -> None:
    url = other_loopback.add("a.jpg", jpeg(10, 10))
    with pytest.raises(FetchRefused, match=r"^fetch refused: 127\.0\.0\.2 is a loopback address$"):
        await fetcher.get(url)
    assert other_loopback.hits == {}


async def test_without_allow_hosts_loopback_by_address_or_name_is_refused(
    image_server: ImageServer,
) -> None:
    url = image_server.add("a.jpg", jpeg(10, 10))
    async with Fetcher(FetchSettings()) as fetcher:
        with pytest.raises(FetchRefused, match=r"^fetch refused: 127\.0\.0\.1 is a loopback"):
            await fetcher.get(url)
        with pytest.raises(FetchRefused, match=r"^fetch refused: localhost resolves to .*loopback"):
            await fetcher.get(url.replace("127.0.0.1", "localhost"))
    assert image_server.hits == {}


async def test_a_redirect_to_a_refused_address_is_not_followed(
    image_server: ImageServer, other_loopback: ImageServer, fetcher: Fetcher
) -> None:
    target = other_loopback.add("secret", b"internal")

    def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(target)

    image_server.extra["hop"] = redirect
    with pytest.raises(FetchRefused, match=r"127\.0\.0\.2 is a loopback address"):
        await fetcher.get(f"{image_server.url}/hop")
    assert image_server.hits == {"hop": 1}
    assert other_loopback.hits == {}


async def test_allow_hosts_takes_names_and_networks(
    image_server: ImageServer, other_loopback: ImageServer
) -> None:
    named = image_server.add("n.jpg", b"by name").replace("127.0.0.1", "localhost")
    cidr = other_loopback.add("c.jpg", b"by network")
    async with Fetcher(FetchSettings(allow_hosts=["localhost", "127.0.0.0/30"])) as fetcher:
        assert (await fetcher.get(named)).body == b"by name"
        assert (await fetcher.get(cidr)).body == b"by network"


async def test_redirects_are_followed_up_to_five(
    image_server: ImageServer, fetcher: Fetcher
) -> None:
    def hop(request: web.Request) -> web.StreamResponse:
        n = int(request.query["n"])
        if n == 0:
            return web.Response(body=b"arrived")
        raise web.HTTPFound(f"/hop?n={n - 1}")

    image_server.extra["hop"] = hop
    assert (await fetcher.get(f"{image_server.url}/hop?n=5")).body == b"arrived"
    with pytest.raises(FetchError, match="more than 5 redirects"):
        await fetcher.get(f"{image_server.url}/hop?n=6")


@pytest.mark.parametrize("chunked", [False, True])
async def test_max_bytes_is_enforced_while_streaming(
    image_server: ImageServer, fetcher: Fetcher, chunked: bool
) -> None:
    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = 50_000
        await response.prepare(request)
        for _ in range(50):
            await response.write(b"x" * 1000)
        return response

    image_server.extra["big"] = big
    with pytest.raises(FetchError, match="larger than 10000 bytes"):
        await fetcher.get(f"{image_server.url}/big")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http and https URLs are fetched, not 'file'"),
        ("ftp://example.com/x", "only http and https URLs are fetched, not 'ftp'"),
        ("http:///nohost", "no host in"),
        ("gopher://127.0.0.1:70/", "only http and https"),
    ],
)
async def test_other_schemes_are_refused(fetcher: Fetcher, url: str, message: str) -> None:
    with pytest.raises(FetchRefused, match=message):
        await fetcher.get(url)


async def test_http_errors_and_timeouts_are_one_line(
    image_server: ImageServer, make_settings: object
) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.Response(body=b"late")

    image_server.extra["slow"] = slow
    settings = FetchSettings(allow_hosts=["127.0.0.1"], read_timeout=0.2)
    async with Fetcher(settings) as fetcher:
        with pytest.raises(FetchError, match=r"^fetch failed: .*/missing: HTTP 404 Not Found$"):
            await fetcher.get(f"{image_server.url}/missing")
        with pytest.raises(FetchError, match=r"^fetch failed: .*/slow: timed out$"):
            await fetcher.get(f"{image_server.url}/slow")


async def test_a_refused_url_fails_the_task_not_the_request(
    api: Client, other_loopback: ImageServer
) -> None:
    url = other_loopback.add("x.jpg", jpeg(10, 10))
    [status] = await create_ok(api, {"task_name": "image.info", "url": url}, block=True)
    assert status["status"] == "error"
    assert status["result"] == "fetch refused: 127.0.0.2 is a loopback address"
    assert other_loopback.hits == {}
