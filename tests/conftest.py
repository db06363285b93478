"""Real services for the tests: one redis-server per session, a real arq worker per test."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer
from pytest_aiohttp import AiohttpClient, AiohttpServer

from taskd.redis_server import RedisServer
from taskd.settings import Settings, parse_settings
from taskd.web.app import RUNNER_OPTIONS, create_app
from taskd.web.errors import HANDLER_OPTIONS
from tests.images import ImageServer
from tests.remote_servers import Slurm, Sshd, remote_services
from tests.s3_servers import S3Server, moto_server, s3rver
from workers import Worker

SECRET = "test-secret"
API_KEY = "test-key"
OTHER_SECRET = "other-secret"

Client = TestClient[Any, Any]
SettingsFactory = Callable[..., Settings]
ConfigFactory = Callable[..., dict[str, Any]]
WorkerFactory = Callable[[Settings], Awaitable["RunningWorker"]]
ClientFactory = Callable[[Settings], Awaitable[Client]]
ApiFactory = Callable[..., Awaitable[Client]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto() -> Iterator[S3Server]:
    with moto_server(free_port()) as server:
        yield server


@pytest.fixture(scope="session")
def signing_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3rver(free_port(), tmp_path_factory.mktemp("s3rver")) as server:
        yield server


@pytest.fixture(scope="session")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sshd, Slurm]]:
    """A real sshd in front of a real single-node Slurm (with accounting), for the session."""
    with remote_services(tmp_path_factory.mktemp("remote")) as services:
        yield services


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A machine's workdir for the remote tests (sshd runs on this host, as this user)."""
    path = tmp_path / "remote-work"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def clean_redis(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushall()


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def make_config(redis_server: RedisServer, tmp_path: Path) -> ConfigFactory:
    """The tests' settings as a mapping (explicit, never from the ambient environment); keyword
    arguments override sections."""

    def make(**sections: dict[str, Any]) -> dict[str, Any]:
        base: dict[str, Any] = {
            "server": {"max_block_seconds": 10},
            # A test's workers stop at once: what they still run goes back to the queue.
            "worker": {"shutdown_grace": 0},
            "redis": {"url": redis_server.url},
            "tasks": {"modules": ["tasks", "tests.sample_tasks"]},
            "storage": {"path": str(tmp_path / "files")},
            "fetch": {"allow_hosts": ["127.0.0.1"]},
            "accounts": {
                "demo": {
                    "secret": SECRET,
                    "api_keys": [API_KEY],
                    "referrers": ["https://example.com", "*.example.org", "http://localhost:*"],
                },
                "other": {"secret": OTHER_SECRET},
            },
        }
        return deep_merge(base, sections)

    return make


@pytest.fixture
def make_settings(make_config: ConfigFactory) -> SettingsFactory:
    def make(**sections: dict[str, Any]) -> Settings:
        return parse_settings(make_config(**sections))

    return make


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


# A test's worker stops at once (shutdown_grace 0); past this, the test reports where it hangs.
STOP_BOUND = 20


@dataclass
class RunningWorker:
    """A worker engine running in the test's event loop."""

    worker: Worker
    task: asyncio.Task[None]

    async def stop(self) -> None:
        """What SIGTERM does to `taskd worker`; returns once it has stopped."""
        await self.worker.stop()
        await self.task


@pytest.fixture
async def start_worker() -> AsyncIterator[WorkerFactory]:
    workers: list[RunningWorker] = []

    async def start(settings: Settings) -> RunningWorker:
        worker = Worker(settings)
        running = RunningWorker(worker, asyncio.create_task(worker.run()))
        workers.append(running)
        started = asyncio.create_task(worker.started.wait())
        await asyncio.wait([started, running.task], return_when=asyncio.FIRST_COMPLETED)
        if running.task.done():
            running.task.result()  # raises what stopped it
        return running

    yield start
    for running in workers:
        if not running.task.done():
            try:
                await asyncio.wait_for(running.stop(), STOP_BOUND)
            except TimeoutError:
                for task in asyncio.all_tasks():  # where it hangs, for whoever reads the log
                    task.print_stack(file=sys.stderr)
                raise AssertionError(f"the worker did not stop within {STOP_BOUND} s") from None


@pytest.fixture
def make_client(aiohttp_client: AiohttpClient) -> ClientFactory:
    async def make(settings: Settings) -> Client:
        # Started here: TestServer ignores runner options given to its constructor, and
        # sets handler_cancellation itself.
        server = TestServer(create_app(settings))
        options = {k: v for k, v in RUNNER_OPTIONS.items() if k != "handler_cancellation"}
        await server.start_server(**options, **HANDLER_OPTIONS)
        return await aiohttp_client(server)

    return make


@pytest.fixture
def make_api(
    make_settings: SettingsFactory, start_worker: WorkerFactory, make_client: ClientFactory
) -> ApiFactory:
    """An HTTP server (and a worker, unless with_worker=False) on settings with these sections."""

    async def make(with_worker: bool = True, **sections: dict[str, Any]) -> Client:
        settings = make_settings(**sections)
        if with_worker:
            await start_worker(settings)
        return await make_client(settings)

    return make


@pytest.fixture
async def api(
    settings: Settings, start_worker: WorkerFactory, make_client: ClientFactory
) -> Client:
    """The usual set-up: an HTTP server and one worker on the test's settings."""
    await start_worker(settings)
    return await make_client(settings)


@pytest.fixture
async def idle_api(settings: Settings, make_client: ClientFactory) -> Client:
    """An HTTP server with no worker: tasks stay queued."""
    return await make_client(settings)


@pytest.fixture
async def image_server(aiohttp_server: AiohttpServer) -> ImageServer:
    """A local HTTP server for task inputs (127.0.0.1 is in the tests' fetch allow_hosts)."""
    images = ImageServer()
    server = await aiohttp_server(images.app())
    images.url = f"http://127.0.0.1:{server.port}"
    return images


@pytest.fixture
async def other_loopback(aiohttp_server: AiohttpServer) -> ImageServer:
    """A server on 127.0.0.2: loopback, and not in the tests' allow_hosts."""
    images = ImageServer()
    server = await aiohttp_server(images.app(), host="127.0.0.2")
    images.url = f"http://127.0.0.2:{server.port}"
    return images
