"""taskd.client against a real server: every call, typed errors, retries, the sync wrapper."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from taskd.client import (
    AsyncClient,
    BadRequest,
    Client,
    ConnectionFailed,
    NotFound,
    Unauthorized,
    sign,
)
from taskd.redis_server import RedisServer
from tests.conftest import API_KEY, SECRET, ClientFactory, SettingsFactory, free_port
from tests.conftest import Client as TestApi
from tests.helpers import ROOT


def url_of(api: TestApi) -> str:
    return str(api.make_url("")).rstrip("/")


async def test_create_status_wait_and_streams(api: TestApi) -> None:
    async with AsyncClient(url_of(api), secret=SECRET) as taskd:
        [done] = await taskd.create({"task_name": "hello", "name": "client"}, block=True)
        assert done["result"] == "Hello client"
        statuses = [s async for s in taskd.create_stream({"task_name": "sleep", "seconds": 0.2})]
        assert statuses[0]["status"] == "queued"
        assert statuses[-1]["status"] == "success"
        assert statuses[-1]["progress"] == 100
        queued = await taskd.create([{"task_name": "sleep", "seconds": 0.2}] * 2)
        keys = [s["key"] for s in queued]
        finals = await taskd.wait(keys)
        assert [s["key"] for s in finals] == keys
        assert {s["status"] for s in finals} == {"success"}
        assert await taskd.status(keys) == finals
        streamed = [s async for s in taskd.status_stream(keys)]
        assert streamed == finals  # all ended: the first line only


async def test_cancel_catalog_and_an_api_key(api: TestApi) -> None:
    async with AsyncClient(url_of(api), api_key=API_KEY, origin="https://example.com") as taskd:
        [running] = await taskd.create({"task_name": "sleep", "seconds": 30})
        [cancelled] = await taskd.cancel(running["key"])
        assert cancelled["result"] == "cancelled"
        names = [t["name"] for t in await taskd.catalog()]
        assert "hello" in names
        assert "slurm.submit" in names


async def test_upload_file_url_and_download(api: TestApi, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(bytes(range(256)) * 1000)
    async with AsyncClient(url_of(api), secret=SECRET) as taskd:
        uploaded = await taskd.upload(source)
        assert uploaded["files"] == ["data.bin"]
        assert uploaded["result"]["size"] == 256_000
        url = taskd.file_url(uploaded["key"], "data.bin")
        assert url == f"{url_of(api)}/v1/file/data.bin?task={uploaded['key']}"
        target = await taskd.download(uploaded["key"], tmp_path / "copy.bin")
        assert target.read_bytes() == source.read_bytes()
        assert ".copy.bin.part" not in os.listdir(tmp_path)  # written aside, then renamed


async def test_errors_carry_the_servers_words(api: TestApi) -> None:
    async with AsyncClient(url_of(api), secret=SECRET) as taskd:
        with pytest.raises(BadRequest) as bad:
            await taskd.create({"task_name": "hello"})
        assert bad.value.status == 400
        assert bad.value.errors == [
            {"name": "tasks.name", "location": "body", "description": "name is missing"}
        ]
        assert str(bad.value) == "HTTP 400: tasks.name: name is missing"
        with pytest.raises(NotFound) as unknown:
            await taskd.status("A" * 26)
        assert unknown.value.errors[0]["description"] == f"unknown task key: {'A' * 26}"
    async with AsyncClient(url_of(api), secret="wrong") as taskd:
        with pytest.raises(Unauthorized) as refused:
            await taskd.create({"task_name": "hello", "name": "x"})
        assert refused.value.message == "invalid secret"


async def test_a_closed_port_is_a_connection_error() -> None:
    async with AsyncClient(f"http://127.0.0.1:{free_port()}", secret=SECRET, retries=1) as taskd:
        with pytest.raises(ConnectionFailed, match="cannot reach"):
            await taskd.catalog()


async def test_503s_are_retried_until_redis_is_back(
    make_settings: SettingsFactory, make_client: ClientFactory, start_worker: object, tmp_path: Path
) -> None:
    port = free_port()
    redis = RedisServer(tmp_path / "redis", port=port).start()
    api = await make_client(make_settings(redis={"url": redis.url}))
    redis.stop()
    async with AsyncClient(url_of(api), secret=SECRET, retries=5) as taskd:
        attempt = asyncio.create_task(taskd.create({"task_name": "hello", "name": "later"}))
        await asyncio.sleep(1.5)  # the server answers 503 with Retry-After meanwhile
        assert not attempt.done()
        redis = RedisServer(tmp_path / "redis", port=port).start()
        try:
            [status] = await asyncio.wait_for(attempt, 20)
        finally:
            redis.stop()
    assert status["status"] == "queued"


async def test_the_sync_client(api: TestApi, tmp_path: Path) -> None:
    def use() -> list[str]:
        with Client(url_of(api), secret=SECRET) as taskd:
            [done] = taskd.create({"task_name": "hello", "name": "sync"}, block=True)
            seen = [
                s["status"] for s in taskd.create_stream({"task_name": "sleep", "seconds": 0.1})
            ]
            return [done["result"], seen[0], seen[-1]]

    assert await asyncio.to_thread(use) == ["Hello sync", "queued", "success"]


async def test_sign_makes_urls_the_server_accepts(api: TestApi) -> None:
    path = "/v1/create_file?task_name=hello&name=signed"
    response = await api.get(sign(path, "demo", SECRET, ttl=60))
    # Past authentication: hello makes no file, which is the only complaint.
    assert response.status == 404
    assert (await response.json())["message"].endswith("produced no files")
    forged = await api.get(sign(path, "demo", "not-the-secret", ttl=60))
    assert forged.status == 401


def test_the_client_imports_none_of_the_servers_dependencies() -> None:
    """taskd.client needs aiohttp and orjson only: the server's heavy packages stay unloaded."""
    heavy = ["pyvips", "aiobotocore", "botocore", "asyncssh", "redis", "arq", "pydantic"]
    check = (
        "import sys, taskd.client; "
        f"loaded = [m for m in {heavy!r} if m in sys.modules]; "
        "print(','.join(loaded))"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == ""
