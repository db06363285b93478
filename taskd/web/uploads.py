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
from taskd.web.params import credentials, query_params
from taskd.web.responses import json_bytes, json_list
from taskd.web.state import ACCOUNTS, RECORDS, SETTINGS, STORAGE

CHUNK = 1 << 18
FILE_FIELD = "file"


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
    account = request.app[ACCOUNTS].authenticate(credentials(request, query_params(request)))
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
        async for chunk in body_chunks(request):
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


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    if request.content_type != "multipart/form-data":
        async for chunk in request.content.iter_chunked(CHUNK):
            yield chunk
        return
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and part.name == FILE_FIELD:
            while chunk := await part.read_chunk(CHUNK):
                yield chunk
            return
    raise InvalidRequest([Problem(FILE_FIELD, "body", "a multipart upload needs a 'file' field")])
