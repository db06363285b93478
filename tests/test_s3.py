"""The S3 backend: uploads with their type, presigned GETs (checked by s3rver), expiry."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import aiohttp
from aiobotocore.session import get_session

from taskd.storage import sweep
from taskd.storage.s3 import S3Storage, open_client
from taskd.web.state import RECORDS
from tests.conftest import SECRET, ApiFactory, SettingsFactory
from tests.helpers import create_ok, run_taskd
from tests.images import ImageServer, decode, jpeg
from tests.s3_servers import S3Server


def bucket_name() -> str:
    return f"taskd-{secrets.token_hex(4)}"


async def objects(s3: S3Server, bucket: str) -> list[str]:
    async with get_session().create_client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
    ) as client:
        listing = await client.list_objects_v2(Bucket=bucket)
        return [o["Key"] for o in listing.get("Contents", []) if "Key" in o]


async def fetch(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.content_type, await response.read()


async def test_create_file_redirects_to_a_presigned_s3_url(
    make_api: ApiFactory, moto: S3Server, image_server: ImageServer
) -> None:
    bucket = bucket_name()  # does not exist yet: created at start
    api = await make_api(storage=moto.storage(bucket))
    url = image_server.add("cat.jpg", jpeg(400, 300))
    body = {"secret": SECRET, "task": {"task_name": "image.thumb", "url": url, "width": 40}}
    response = await api.post("/v1/create_file/cat.jpg", json=body, allow_redirects=False)
    assert response.status == 302
    location = response.headers["Location"]
    assert location.startswith(f"{moto.endpoint_url}/{bucket}/")
    assert "X-Amz-Signature=" in location
    assert "X-Amz-Expires=3600" in location
    status, content_type, data = await fetch(location)
    assert (status, content_type) == (200, "image/jpeg")
    assert decode(data).size == (40, 30)


async def test_s3_files_go_with_their_record(
    make_api: ApiFactory, make_settings: SettingsFactory, moto: S3Server, image_server: ImageServer
) -> None:
    bucket = bucket_name()
    api = await make_api(storage=moto.storage(bucket), worker={"result_ttl": 1})
    url = image_server.add("s.jpg", jpeg(100, 100))
    definition = {"task_name": "image.thumb", "url": url, "sizes": {"a": 10, "b": 20}}
    [status] = await create_ok(api, definition, block=True)
    assert sorted(await objects(moto, bucket)) == [f"{status['key']}/a", f"{status['key']}/b"]
    await asyncio.sleep(1.1)
    settings = make_settings(storage=moto.storage(bucket))
    async with S3Storage.open(settings.storage) as storage:
        assert await sweep(api.app[RECORDS].redis, api.app[RECORDS].keys, storage) == 1
    assert await objects(moto, bucket) == []


async def test_presigned_urls_expire(
    make_api: ApiFactory, signing_s3: S3Server, image_server: ImageServer
) -> None:
    api = await make_api(storage=signing_s3.storage(bucket_name(), url_ttl=1))
    url = image_server.add("e.jpg", jpeg(64, 64))
    body = {"secret": SECRET, "task": {"task_name": "image.thumb", "url": url}}
    response = await api.post("/v1/create_file", json=body, allow_redirects=False)
    location = response.headers["Location"]
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in location
    assert (await fetch(location))[0] == 200
    await asyncio.sleep(2.1)
    status, _, error = await fetch(location)
    assert status == 403
    assert b"Request has expired" in error


async def test_urls_of_an_unknown_access_key_are_refused(
    make_api: ApiFactory,
    make_settings: SettingsFactory,
    signing_s3: S3Server,
    image_server: ImageServer,
) -> None:
    bucket = bucket_name()
    api = await make_api(storage=signing_s3.storage(bucket))
    url = image_server.add("w.jpg", jpeg(64, 64))
    [status] = await create_ok(api, {"task_name": "image.thumb", "url": url}, block=True)
    good = make_settings(storage=signing_s3.storage(bucket))
    wrong = make_settings(storage={**signing_s3.storage(bucket), "access_key_id": "NOBODY"})
    for settings, expected in ((good, 200), (wrong, 403)):
        async with open_client(settings.storage) as client:
            location = await S3Storage(client, bucket, 60).url(status["key"], "thumb.jpg", "")
        assert (await fetch(location))[0] == expected


async def test_task_files_from_bytes_and_paths_on_s3(make_api: ApiFactory, moto: S3Server) -> None:
    api = await make_api(storage=moto.storage(bucket_name()))
    [status] = await create_ok(api, {"task_name": "test.files", "text": "xyz"}, block=True)
    for name, content_type, body in (
        ("notes.txt", "text/plain", b"xyz"),
        ("data.bin", "application/x-test", b"xyz" * 1000),
    ):
        response = await api.get(
            f"/v1/file/{name}", params={"task": status["key"]}, allow_redirects=False
        )
        assert await fetch(response.headers["Location"]) == (200, content_type, body)


async def test_processes_starting_together_share_the_new_bucket(
    make_settings: SettingsFactory, signing_s3: S3Server
) -> None:
    settings = make_settings(storage=signing_s3.storage(bucket_name()))

    async def start() -> None:
        async with S3Storage.open(settings.storage) as storage:
            await storage.put("K", "f", b"x", "text/plain")

    await asyncio.gather(*(start() for _ in range(4)))


def test_an_unusable_bucket_stops_serve_with_one_line(moto: S3Server, tmp_path: Path) -> None:
    config = tmp_path / "taskd.toml"
    config.write_text(
        f'[redis]\nurl = "redis://127.0.0.1:1"\n[storage]\nbackend = "s3"\nbucket = "x"\n'
        f'endpoint_url = "{moto.endpoint_url}"\naccess_key_id = "a"\nsecret_access_key = "b"\n'
    )
    done = run_taskd("serve", "--config", str(config))
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("taskd: storage: cannot use bucket 'x' at http://127.0.0.1:"), last
    assert "Traceback" not in done.stderr
