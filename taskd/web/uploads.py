"""POST /v1/upload/{filename}: a client's file streamed to storage as a finished `upload` task.

The body is the raw bytes, or `multipart/form-data` with one `file` field. It is written to a
temporary file while its digests are computed, never held in memory whole, and refused with
a 413 past `[server] max_upload_bytes`. The answer is a list of one status, already
`success`; its key serves as `source_task` of remote.upload and through /v1/file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mimetypes
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

from aiohttp import BodyPartReader, web

from taskd.errors import InvalidRequest, Problem, TooLarge
from taskd.records import new_key
from taskd.storage import FileNameError, check_name
from taskd.web.params import Params, credentials, query_params
from taskd.web.responses import json_bytes, json_list
from taskd.web.state import ACCOUNTS, RECORDS, SETTINGS, STORAGE

CHUNK = 1 << 18
FILE_FIELD = "file"
CREDENTIAL_FIELDS = ("secret", "api_key")
MAX_FIELD = 4096


class Digests:
    def __init__(self) -> None:
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.md5.update(chunk)
        self.sha256.update(chunk)


async def upload(request: web.Request) -> web.StreamResponse:
    params, chunks = await opened(request)
    account = request.app[ACCOUNTS].authenticate(credentials(request, params))
    filename = request.match_info["filename"]
    try:
        check_name(filename)
    except FileNameError as exc:
        raise InvalidRequest([Problem("filename", "path", str(exc))]) from None
    limit = request.app[SETTINGS].server.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    key = new_key()
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    storage = request.app[STORAGE]
    with spooled() as (path, out):
        digests = Digests()
        async for chunk in chunks:
            digests.update(chunk)
            if digests.size > limit:
                raise too_large(limit)
            await asyncio.to_thread(out.write, chunk)
        out.close()
        await storage.put(key, filename, path, content_type)
    result = {
        "size": digests.size,
        "md5": digests.md5.hexdigest(),
        "sha256": digests.sha256.hexdigest(),
    }
    try:
        status = await request.app[RECORDS].create_upload(
            account.name, account.limits.rate_per_minute, key, result, filename
        )
    except BaseException:
        await asyncio.shield(storage.delete(key))
        raise
    return json_bytes(json_list([status]))


def too_large(limit: int) -> TooLarge:
    return TooLarge(f"upload too large (at most {limit} bytes)")


@contextlib.contextmanager
def spooled() -> Iterator[tuple[Path, IO[bytes]]]:
    """A temporary file, removed afterwards whatever happens."""
    with tempfile.TemporaryDirectory(prefix="taskd-upload-") as directory:
        path = Path(directory) / "body"
        with path.open("wb") as out:
            yield path, out


async def opened(request: web.Request) -> tuple[Params, AsyncIterator[bytes]]:
    """The parameters credentials come from, and the file's bytes as they arrive. A multipart
    body may carry `secret`/`api_key` fields before its `file` field, as a form would."""
    params = query_params(request)
    if request.content_type != "multipart/form-data":
        return params, request.content.iter_chunked(CHUNK)
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == FILE_FIELD:
            return params, part_chunks(part)
        if part.name in CREDENTIAL_FIELDS:
            value = await part.read_chunk(MAX_FIELD + 1)
            if len(value) > MAX_FIELD:
                raise InvalidRequest([Problem(part.name, "body", f"{part.name} is too long")])
            params.values[part.name] = value.decode(errors="replace")
            params.sources[part.name] = "body"
    raise InvalidRequest([Problem(FILE_FIELD, "body", "a multipart upload needs a 'file' field")])


async def part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk
