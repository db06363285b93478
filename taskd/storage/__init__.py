"""Output files behind one small interface: a local directory (default) or an S3 bucket.

Files are stored as `{task key}/{name}`; `url` gives the address a client is redirected to.
Files expire with their task record: settling a task with files schedules them in
`Keys.expiring`, `sweep` deletes what is due.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from redis.asyncio import Redis

from taskd.errors import TaskdError
from taskd.keys import Keys
from taskd.settings import StorageSettings

log = logging.getLogger(__name__)

# Names are URL path segments and file names at once: nothing to encode, nothing hidden.
CHUNK = 1 << 20  # bytes per read when a stored file is streamed
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Take due task keys off the schedule atomically, so concurrent sweepers never share one.
# KEYS: schedule. ARGV: now_ms, batch size.
TAKE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""


class FileNameError(ValueError):
    pass


class StorageError(TaskdError):
    """The configured storage cannot be used (checked when a process starts)."""


def check_name(name: str) -> str:
    if not FILE_NAME.fullmatch(name):
        raise FileNameError(
            f"invalid file name {name!r}: 1-128 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return name


class Storage(Protocol):
    async def put(self, key: str, name: str, data: bytes | Path, content_type: str) -> None:
        """Store one output file of task `key`; replaces a file of the same name."""

    def read(self, key: str, name: str) -> AsyncIterator[bytes]:
        """The file's bytes in chunks, never whole in memory (StorageError if it is gone)."""

    async def url(self, key: str, name: str, base: str) -> str:
        """Where a client fetches the file; `base` is this server's public URL."""

    async def delete(self, key: str) -> None:
        """Remove every file of task `key` (nothing if there is none)."""

    async def check(self) -> bool:
        """Whether files can be stored now (for /v1/health)."""


@contextlib.asynccontextmanager
async def open_storage(
    settings: StorageSettings, redis: Redis, keys: Keys
) -> AsyncIterator[Storage]:
    """The configured backend, its clients opened here and closed on exit."""
    if settings.backend == "s3":
        from taskd.storage.s3 import S3Storage

        async with S3Storage.open(settings) as s3:
            yield s3
    else:
        from taskd.storage.local import LocalStorage

        yield LocalStorage(Path(settings.path), settings.url_ttl, redis, keys.url_key)


async def sweep(redis: Redis, keys: Keys, storage: Storage, batch: int = 100) -> int:
    """Delete the files of tasks whose records have expired; returns how many tasks."""
    take_due = redis.register_script(TAKE_DUE)
    swept = 0
    while True:
        due = await take_due(keys=[keys.expiring], args=[int(time.time() * 1000), batch])
        for raw in due:
            key = raw.decode()
            try:
                await storage.delete(key)
            except Exception:  # the next files are still worth sweeping
                log.exception("task %s: cannot delete its files", key)
        swept += len(due)
        if len(due) < batch:
            return swept
