"""The guarded fetcher: every URL taskd reads or posts to for a user goes through here.

Only http and https; the host is resolved here and every address must be public (or listed
in `[fetch] allow_hosts`) before any connection is made, again at every redirect hop; bodies
are capped at `max_bytes` while they stream in.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from taskd import __version__
from taskd.errors import TaskFailed
from taskd.settings import FetchSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK = 64 * 1024


class FetchError(TaskFailed):
    """A URL refused by the guard, or a fetch that failed; the message is one line."""


class FetchRefused(FetchError):
    """The guard refused the URL: no connection was made, and retrying cannot help."""


# IPv6 ranges that carry or reach IPv4 addresses: they are never fetched unless allowed, as
# the IPv4 address inside may be private (6to4, NAT64, Teredo, the 6bone and ORCHID relics).
TRANSITION = tuple(
    ipaddress.ip_network(n)
    for n in (
        "2002::/16",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2001::/32",
        "3ffe::/16",
        "2001:10::/28",
    )
)


def non_public(ip: IPAddress) -> str | None:
    """What kind of non-public address `ip` is, or None for a public one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return non_public(ip.ipv4_mapped)
        if any(ip in network for network in TRANSITION):
            return "transition (IPv4-embedding)"
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),
    ):
        if flag:
            return kind
    return None


class AddressPolicy:
    """Public addresses pass; others only when `allow_hosts` names the host or its network."""

    def __init__(self, allow_hosts: list[str]) -> None:
        self.names: set[str] = set()
        self.networks: list[IPNetwork] = []
        for entry in allow_hosts:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry.lower().rstrip("."))

    def name_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.names

    def check(self, host: str, address: str) -> None:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        kind = non_public(ip)
        if kind is None or any(ip in network for network in self.networks):
            return
        if host == address:
            raise FetchRefused(f"fetch refused: {address} is a {kind} address")
        raise FetchRefused(f"fetch refused: {host} resolves to {address}, a {kind} address")


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp, then refuses the whole host if any address is not allowed."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self.resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.resolver.resolve(host, port, family)
        if not self.policy.name_allowed(host):
            for result in results:
                self.policy.check(host, result["host"])
        return results

    async def close(self) -> None:
        await self.resolver.close()


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int
    content_type: str
    body: bytes


class Fetcher:
    """One HTTP client session per process, owned by its lifecycle (`async with`)."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self.policy = AddressPolicy(settings.allow_hosts)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.policy), limit=100)
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,  # no proxy from the environment: the guard must see the real host
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.settings.connect_timeout,
                sock_read=self.settings.read_timeout,
            ),
            headers={"User-Agent": f"taskd/{__version__}"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, url: str) -> Fetched:
        return await self.request("GET", url)

    async def post_json(
        self, url: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> Fetched:
        return await self.request(
            "POST", url, body, {"Content-Type": "application/json", **(headers or {})}
        )

    async def request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fetched:
        """The whole answer, at most `max_bytes`; errors are FetchError."""
        async with self.opened(method, url, body, headers) as (target, response):
            data = b"".join([chunk async for chunk in self.chunks(target, response)])
            return Fetched(str(target), response.status, response.content_type, data)

    @contextlib.asynccontextmanager
    async def stream(self, url: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """GET `url`, its body as chunks as they arrive (capped at `max_bytes` too)."""
        async with self.opened("GET", url) as (target, response):
            yield self.chunks(target, response)

    @contextlib.asynccontextmanager
    async def opened(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[tuple[URL, aiohttp.ClientResponse]]:
        """Follow up to MAX_REDIRECTS redirects, checking every hop; the final response."""
        assert self._session is not None, "use the fetcher inside `async with`"
        target = self.checked_url(url)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = await self._session.request(
                    method, target, data=body, headers=headers, allow_redirects=False
                )
            except TimeoutError:
                raise FetchError(f"fetch failed: {target}: timed out") from None
            except aiohttp.ClientError as exc:
                raise FetchError(f"fetch failed: {target}: {describe(exc)}") from None
            try:
                location = response.headers.get("Location")
                if response.status in REDIRECTS and location:
                    target = self.checked_url(str(target.join(URL(location))))
                    if response.status == 303 or (
                        response.status in (301, 302) and method == "POST"
                    ):
                        method, body = "GET", None
                    continue
                if response.status >= 400:
                    raise FetchError(
                        f"fetch failed: {target}: HTTP {response.status} {response.reason}"
                    )
                yield target, response
                return
            finally:
                response.release()
        raise FetchError(f"fetch failed: {url}: more than {MAX_REDIRECTS} redirects")

    def checked_url(self, url: str) -> URL:
        """The URL if its scheme may be fetched and its host, when an IP address, may be."""
        try:
            parsed = URL(url)
        except ValueError:
            raise FetchRefused(f"fetch refused: not a URL: {url!r}") from None
        if parsed.scheme not in ("http", "https"):
            raise FetchRefused(
                f"fetch refused: only http and https URLs are fetched, not {parsed.scheme or url!r}"
            )
        host = parsed.raw_host
        if not host:
            raise FetchRefused(f"fetch refused: no host in {url!r}")
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return parsed  # a name: the resolver checks what it resolves to
        if not self.policy.name_allowed(host):
            self.policy.check(host, host)
        return parsed

    async def chunks(self, url: URL, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        limit = self.settings.max_bytes
        if response.content_length is not None and response.content_length > limit:
            raise FetchError(f"fetch failed: {url}: larger than {limit} bytes")
        size = 0
        try:
            async for chunk in response.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise FetchError(f"fetch failed: {url}: larger than {limit} bytes")
                yield chunk
        except TimeoutError:
            raise FetchError(f"fetch failed: {url}: timed out") from None
        except aiohttp.ClientError as exc:
            raise FetchError(f"fetch failed: {url}: {describe(exc)}") from None


def describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or exc.os_error})"
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
