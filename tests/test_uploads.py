"""POST /v1/upload/{filename}: streamed to storage as a finished `upload` task."""

from __future__ import annotations

import hashlib
import http.client
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.conftest import API_KEY, SECRET, ApiFactory, Client, ConfigFactory, free_port
from tests.processes import taskd, wait_for_line, write_toml


def digests(data: bytes) -> dict[str, object]:
    return {
        "size": len(data),
        "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


async def test_a_raw_upload_is_a_finished_task_serving_its_file(idle_api: Client) -> None:
    data = os.urandom(300_000)
    response = await idle_api.post(
        "/v1/upload/input.bin", data=data, headers={"Authorization": f"Secret {SECRET}"}
    )
    assert response.status == 200, await response.text()
    [status] = await response.json()
    assert status["status"] == "success"
    assert status["files"] == ["input.bin"]
    assert status["result"] == digests(data)
    assert set(status["events"]) == {"queued", "started", "completed"}
    # The same status later, and the file through /v1/file (no worker needed: it is done).
    again = await idle_api.get("/v1/status", params={"tasks": status["key"]})
    assert (await again.json()) == [status]
    file = await idle_api.get("/v1/file", params={"task": status["key"]})
    assert file.status == 200
    assert await file.read() == data


async def test_a_multipart_upload_takes_its_file_field(idle_api: Client) -> None:
    form = aiohttp.FormData()
    form.add_field("note", "ignored")
    form.add_field("file", b"a,b\n1,2\n", filename="whatever.csv", content_type="text/csv")
    response = await idle_api.post(f"/v1/upload/table.csv?secret={SECRET}", data=form)
    assert response.status == 200, await response.text()
    [status] = await response.json()
    assert status["result"] == digests(b"a,b\n1,2\n")
    file = await idle_api.get("/v1/file/table.csv", params={"task": status["key"]})
    assert await file.read() == b"a,b\n1,2\n"
    assert file.headers["Content-Type"].startswith("text/csv")


async def test_a_multipart_upload_without_a_file_field_is_a_400(idle_api: Client) -> None:
    form = aiohttp.FormData()
    form.add_field("other", b"x", filename="x.bin")
    response = await idle_api.post(f"/v1/upload/x.bin?secret={SECRET}", data=form)
    assert response.status == 400
    assert (await response.json())["errors"] == [
        {
            "name": "file",
            "location": "body",
            "description": "a multipart upload needs a 'file' field",
        }
    ]


async def test_an_upload_over_max_upload_bytes_is_a_413_and_stores_nothing(
    make_api: ApiFactory, tmp_path: Path
) -> None:
    client = await make_api(with_worker=False, server={"max_upload_bytes": 1000})
    files = tmp_path / "files"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: caught while streaming
        for _ in range(11):
            yield b"x" * 91

    for body in (b"x" * 1001, chunked()):
        response = await client.post(f"/v1/upload/big.bin?secret={SECRET}", data=body)
        assert response.status == 413
        assert await response.json() == {
            "status": "error",
            "message": "upload too large (at most 1000 bytes)",
        }
    assert not files.exists() or not any(files.iterdir())
    ok = await client.post(f"/v1/upload/small.bin?secret={SECRET}", data=b"x" * 1000)
    assert ok.status == 200


async def test_uploads_need_credentials_and_a_usable_name(idle_api: Client) -> None:
    response = await idle_api.post("/v1/upload/a.txt", data=b"x")
    assert response.status == 401
    assert (await response.json())["message"].startswith("missing credentials")
    response = await idle_api.post(
        "/v1/upload/a.txt", data=b"x", headers={"Authorization": "Secret wrong"}
    )
    assert response.status == 401
    response = await idle_api.post(f"/v1/upload/.hidden?secret={SECRET}", data=b"x")
    assert response.status == 400
    [problem] = (await response.json())["errors"]
    assert (problem["name"], problem["location"]) == ("filename", "path")
    # An API key from a whitelisted origin works as for create.
    response = await idle_api.post(
        f"/v1/upload/a.txt?api_key={API_KEY}", data=b"x", headers={"Origin": "https://example.com"}
    )
    assert response.status == 200


async def test_uploads_count_toward_rate_per_minute(make_api: ApiFactory) -> None:
    client = await make_api(
        with_worker=False, accounts={"demo": {"secret": SECRET, "rate_per_minute": 2}}
    )
    for _ in range(2):
        ok = await client.post(f"/v1/upload/a.txt?secret={SECRET}", data=b"x")
        assert ok.status == 200
    refused = await client.post(f"/v1/upload/a.txt?secret={SECRET}", data=b"x")
    assert refused.status == 401
    assert (await refused.json())["message"] == "account limit reached: rate_per_minute (2)"
    assert int(refused.headers["Retry-After"]) >= 1


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.faults
def test_a_large_upload_is_never_held_in_memory(make_config: ConfigFactory, tmp_path: Path) -> None:
    """256 MiB through a real `taskd serve`: its peak memory grows by far less than that."""
    port = free_port()
    config = write_toml(tmp_path / "taskd.toml", make_config(server={"port": port}))
    log = tmp_path / "serve.log"
    size = 256 * 1024 * 1024
    block = os.urandom(1 << 20)
    with taskd("--config", str(config), "serve", cwd=tmp_path, log=log) as serve:
        wait_for_line(log, "serving http://", serve)
        before = peak_rss_kib(serve.pid)

        def body() -> Iterator[bytes]:
            for _ in range(size // len(block)):
                yield block

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            connection.request(
                "POST", f"/v1/upload/big.bin?secret={SECRET}", body=body(), encode_chunked=True
            )
            response = connection.getresponse()
            answer = orjson.loads(response.read())
        finally:
            connection.close()
        assert response.status == 200, answer
        grown_mib = (peak_rss_kib(serve.pid) - before) / 1024
    assert answer[0]["result"]["size"] == size
    print(f"256 MiB upload: serve's peak memory grew by {grown_mib:.1f} MiB")
    assert grown_mib < 64, f"serve's peak memory grew by {grown_mib:.0f} MiB"


async def test_a_form_may_carry_its_credentials_before_the_file(idle_api: Client) -> None:
    form = aiohttp.FormData()
    form.add_field("secret", SECRET)
    form.add_field("file", b"from a form", filename="x.txt", content_type="text/plain")
    response = await idle_api.post("/v1/upload/form.txt", data=form)
    assert response.status == 200, await response.text()
    [status] = await response.json()
    assert status["result"]["size"] == len(b"from a form")
    wrong = aiohttp.FormData()
    wrong.add_field("secret", "wrong")
    wrong.add_field("file", b"x", filename="x.txt")
    refused = await idle_api.post("/v1/upload/form.txt", data=wrong)
    assert refused.status == 401
    assert (await refused.json())["message"] == "invalid secret"
