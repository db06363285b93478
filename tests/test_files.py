"""create_file, file and the local backend's /v1/files URLs."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse
from yarl import URL

from taskd.settings import Settings
from taskd.storage import sweep
from taskd.storage.local import LocalStorage
from taskd.web.state import RECORDS
from tests.conftest import SECRET, ApiFactory, Client, SettingsFactory, WorkerFactory
from tests.helpers import assert_status, create_ok
from tests.images import ImageServer, decode, jpeg


async def file_url(api: Client, source: str) -> URL:
    """Where a GET create_file of a thumbnail of `source` redirects to."""
    params = {"task_name": "image.thumb", "url": source, "secret": SECRET}
    response = await api.get("/v1/create_file", params=params, allow_redirects=False)
    assert response.status == 302, await response.text()
    return URL(response.headers["Location"])


async def test_post_create_file_redirects_to_the_thumbnail(
    api: Client, image_server: ImageServer
) -> None:
    url = image_server.add("cat.jpg", jpeg(800, 600))
    body = {"secret": SECRET, "task": {"task_name": "image.thumb", "url": url, "width": 80}}
    response = await api.post("/v1/create_file/cat.jpg", json=body, allow_redirects=False)
    assert response.status == 302
    location = URL(response.headers["Location"])
    assert location.path.startswith("/v1/files/")
    assert {"expires", "sig"} <= set(location.query)
    image = await api.get(location.path_qs)
    assert image.status == 200
    assert image.headers["Content-Type"] == "image/jpeg"
    data = await image.read()
    assert int(image.headers["Content-Length"]) == len(data)
    assert decode(data).size == (80, 60)
    assert "max-age=" in image.headers["Cache-Control"]
    assert image.headers["ETag"]
    assert image.headers["Last-Modified"]


async def test_file_url_supports_conditional_and_range_requests(
    api: Client, image_server: ImageServer
) -> None:
    url = image_server.add("r.jpg", jpeg(300, 200))
    path = (await file_url(api, url)).path_qs
    full = await api.get(path)
    data = await full.read()
    again = await api.get(path, headers={"If-None-Match": full.headers["ETag"]})
    assert again.status == 304
    since = await api.get(path, headers={"If-Modified-Since": full.headers["Last-Modified"]})
    assert since.status == 304
    part = await api.get(path, headers={"Range": "bytes=0-9"})
    assert part.status == 206
    assert await part.read() == data[:10]
    assert part.headers["Content-Range"] == f"bytes 0-9/{len(data)}"


async def test_tampered_or_expired_file_urls_are_403(
    api: Client, image_server: ImageServer, make_api: ApiFactory
) -> None:
    url = image_server.add("x.jpg", jpeg(100, 100))
    location = await file_url(api, url)
    later = location.update_query(expires=str(int(location.query["expires"]) + 3600))
    for bad in (later, location.with_query(None), location.update_query(sig="AAAA")):
        answer = await api.get(bad.path_qs)
        assert answer.status == 403
        assert (await answer.json())["status"] == "error"
    past = await api.get(location.update_query(expires="1").path_qs)
    assert past.status == 403


async def test_expired_signature_is_refused(
    make_api: ApiFactory, image_server: ImageServer
) -> None:
    api = await make_api(storage={"url_ttl": 1})
    url = image_server.add("e.jpg", jpeg(50, 50))
    path = (await file_url(api, url)).path_qs
    assert (await api.get(path)).status == 200
    await asyncio.sleep(2.1)
    assert (await api.get(path)).status == 403


async def test_several_files_need_a_valid_filename(api: Client, image_server: ImageServer) -> None:
    url = image_server.add("s.jpg", jpeg(400, 400))
    definition = {"task_name": "image.thumb", "url": url, "sizes": {"small": 32, "large": 128}}
    body = {"secret": SECRET, "task": definition}
    response = await api.post("/v1/create_file/medium", json=body, allow_redirects=False)
    assert response.status == 404
    assert await response.json() == {
        "status": "error",
        "message": "'medium' is not a valid filename, choose one of: 'small', 'large'",
    }
    response = await api.post("/v1/create_file/large", json=body)
    assert response.status == 200
    assert decode(await response.read()).size == (128, 128)


async def test_one_file_answers_any_filename(api: Client, image_server: ImageServer) -> None:
    url = image_server.add("o.jpg", jpeg(64, 64))
    definition = {"task_name": "image.thumb", "url": url}
    for path in ("/v1/create_file", "/v1/create_file/whatever.png"):
        response = await api.post(path, json={"secret": SECRET, "task": definition})
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/jpeg"


async def test_task_without_files_is_404(api: Client) -> None:
    body = {"secret": SECRET, "task": {"task_name": "hello", "name": "x"}}
    response = await api.post("/v1/create_file", json=body)
    assert response.status == 404
    message = (await response.json())["message"]
    assert re.fullmatch(r"task [A-Z2-7]{26} produced no files", message), message


async def test_failed_task_is_400_with_its_status(api: Client) -> None:
    body = {"secret": SECRET, "task": {"task_name": "test.fail", "message": "no luck"}}
    response = await api.post("/v1/create_file", json=body)
    assert response.status == 400
    status = await response.json()
    assert_status(status)
    assert (status["status"], status["result"]) == ("error", "no luck")


async def test_create_file_gives_504_with_the_status_at_max_block_seconds(
    make_api: ApiFactory,
) -> None:
    api = await make_api(server={"max_block_seconds": 0.3})
    body = {"secret": SECRET, "task": {"task_name": "sleep", "seconds": 5}}
    response = await api.post("/v1/create_file", json=body)
    assert response.status == 504
    status = await response.json()
    assert_status(status)
    assert status["status"] in ("queued", "executing")


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"secret": SECRET}, "task"),
        ({"secret": SECRET, "task": [{"task_name": "hello", "name": "x"}]}, "task"),
        ({"secret": SECRET, "task": {"task_name": "image.thumb"}}, "task.url"),
        ({"secret": SECRET, "task": {"task_name": "nope"}}, "task.task_name"),
    ],
)
async def test_create_file_post_errors_name_the_task(
    idle_api: Client, body: dict[str, Any], name: str
) -> None:
    response = await idle_api.post("/v1/create_file", json=body)
    assert response.status == 400
    errors = (await response.json())["errors"]
    assert [(e["name"], e["location"]) for e in errors] == [(name, "body")]


async def test_get_form_errors_are_querystring_names(idle_api: Client) -> None:
    response = await idle_api.get(
        "/v1/create_file", params={"secret": SECRET, "task_name": "image.thumb", "width": "x"}
    )
    assert response.status == 400
    errors = (await response.json())["errors"]
    assert {(e["name"], e["location"]) for e in errors} == {
        ("url", "querystring"),
        ("width", "querystring"),
    }


async def test_get_form_parses_typed_and_json_parameters(
    api: Client, image_server: ImageServer
) -> None:
    url = image_server.add("g.jpg", jpeg(200, 100))
    params = {
        "secret": SECRET,
        "task_name": "image.thumb",
        "url": url,
        "crop": "yes",
        "width": "40",
        "height": "40",
        "sizes": orjson.dumps({"a": 20, "b": 30}).decode(),
    }
    response = await api.get("/v1/create_file/b", params=params)
    assert response.status == 200
    assert decode(await response.read()).size == (30, 30)


async def test_file_waits_and_redirects(api: Client, image_server: ImageServer) -> None:
    url = image_server.add("f.jpg", jpeg(100, 50))
    [status] = await create_ok(api, {"task_name": "image.thumb", "url": url, "width": 20})
    response = await api.get("/v1/file", params={"task": status["key"]})
    assert response.status == 200
    assert decode(await response.read()).size == (20, 10)
    assert response.history[0].headers["Access-Control-Allow-Origin"] == "*"


async def test_file_errors(idle_api: Client) -> None:
    response = await idle_api.get("/v1/file", params={"task": "A" * 26})
    assert response.status == 404
    assert await response.json() == {
        "status": "error",
        "errors": [
            {
                "name": "task",
                "location": "querystring",
                "description": f"unknown task key: {'A' * 26}",
            }
        ],
    }
    response = await idle_api.get("/v1/file")
    assert response.status == 400
    assert (await response.json())["errors"][0]["name"] == "task"


async def test_files_go_with_their_record(
    make_api: ApiFactory, image_server: ImageServer, settings: Settings
) -> None:
    api = await make_api(worker={"result_ttl": 1})
    url = image_server.add("t.jpg", jpeg(64, 64))
    [first, second] = await create_ok(
        api, [{"task_name": "image.thumb", "url": url, "width": w} for w in (10, 20)], block=True
    )
    roots = [Path(settings.storage.path) / s["key"] for s in (first, second)]
    assert all((root / "thumb.jpg.file").is_file() for root in roots)
    await asyncio.sleep(1.1)
    redis, keys = api.app[RECORDS].redis, api.app[RECORDS].keys
    storage = LocalStorage(Path(settings.storage.path), 60, redis, keys.url_key)
    assert await sweep(redis, keys, storage, batch=1) == 2
    assert not any(root.exists() for root in roots)
    assert (await api.get("/v1/status", params={"tasks": first["key"]})).status == 404
    assert await sweep(redis, keys, storage) == 0


async def test_a_starting_worker_sweeps_expired_files(
    make_api: ApiFactory, start_worker: WorkerFactory, make_settings: SettingsFactory
) -> None:
    api = await make_api(worker={"result_ttl": 1})
    [status] = await create_ok(api, {"task_name": "test.files", "text": "x"}, block=True)
    root = Path(make_settings().storage.path) / status["key"]
    assert root.is_dir()
    await asyncio.sleep(1.1)
    await start_worker(make_settings())
    async with asyncio.timeout(5):
        while root.exists():
            await asyncio.sleep(0.05)


async def test_task_files_from_bytes_and_paths(api: Client, settings: Settings) -> None:
    [status] = await create_ok(api, {"task_name": "test.files", "text": "abc"}, block=True)
    assert status["files"] == ["notes.txt", "data.bin"]
    notes = await api.get("/v1/file/notes.txt", params={"task": status["key"]})
    assert (notes.headers["Content-Type"], await notes.read()) == ("text/plain", b"abc")
    data = await api.get("/v1/file/data.bin", params={"task": status["key"]})
    assert data.headers["Content-Type"] == "application/x-test"
    assert await data.read() == b"abc" * 1000


async def test_files_of_a_failed_task_are_not_kept(api: Client, settings: Settings) -> None:
    definition = {"task_name": "test.files", "text": "abc", "fail": True}
    [status] = await create_ok(api, definition, block=True)
    assert (status["status"], "files" in status) == ("error", False)
    assert not (Path(settings.storage.path) / status["key"]).exists()


async def test_redirects_are_built_on_public_url(
    make_api: ApiFactory, image_server: ImageServer
) -> None:
    api = await make_api(server={"public_url": "https://img.example.com/taskd/"})
    location = await file_url(api, image_server.add("p.jpg", jpeg(40, 40)))
    assert str(location).startswith("https://img.example.com/taskd/v1/files/")
    # Behind the proxy the same path and query is what reaches taskd.
    assert (await api.get(location.path_qs.removeprefix("/taskd"))).status == 200


async def test_several_files_and_no_filename_lists_the_choices(api: Client) -> None:
    [status] = await create_ok(api, {"task_name": "test.files", "text": "a"}, block=True)
    response = await api.get("/v1/file", params={"task": status["key"]})
    assert response.status == 404
    assert (await response.json())["message"] == (
        f"task {status['key']} produced several files, choose one of: 'notes.txt', 'data.bin'"
    )


async def test_create_file_checks_credentials_before_the_definition(idle_api: Client) -> None:
    body = {"secret": "wrong", "task": [{"task_name": "nope"}]}
    response = await idle_api.post("/v1/create_file", json=body)
    assert response.status == 401
    assert await response.json() == {"status": "error", "message": "invalid secret"}


async def test_img_get_with_an_api_key_and_the_page_referer(
    api: Client, image_server: ImageServer
) -> None:
    url = image_server.add("k.jpg", jpeg(30, 30))
    params = {"task_name": "image.thumb", "url": url, "api_key": "test-key"}

    async def from_page(referer: str) -> ClientResponse:
        return await api.get(
            "/v1/create_file/k.jpg",
            params=params,
            headers={"Referer": referer},
            allow_redirects=False,
        )

    assert (await from_page("https://example.com/gallery.html")).status == 302
    bad = await from_page("https://example.com.evil.net/")
    assert bad.status == 401
    assert (await bad.json())["message"] == "referrer not allowed: https://example.com.evil.net"
