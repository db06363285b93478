"""What a running task sees of taskd: its key, a logger, progress, files, fetching, machines."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskd.errors import TaskFailed
from taskd.fetch import Fetched, Fetcher
from taskd.storage import Storage, check_name

if TYPE_CHECKING:
    from taskd.records import Records
    from taskd.remote.machines import Machine, Machines

ProgressReporter = Callable[[Any], Awaitable[None]]
# Why the engine stopped an attempt (the message of the CancelledError a task sees): only a
# client's cancel ends the work for good; on a shutdown or a lost lease the task runs again.
CANCELLED = "cancelled"


def cancelled_by_client(exc: asyncio.CancelledError) -> bool:
    return bool(exc.args) and exc.args[0] == CANCELLED


class TaskLogger(logging.LoggerAdapter[logging.Logger]):
    """Puts the task key on every line (and on the record, for JSON logs)."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs.setdefault("extra", {}).update(self.extra or {})
        return f"task {(self.extra or {}).get('task_key')}: {msg}", kwargs


class TaskContext:
    """Handed to every task function; tasks never touch Redis or HTTP directly."""

    def __init__(
        self,
        key: str,
        name: str,
        attempt: int,
        report: ProgressReporter,
        machines: Machines,
        storage: Storage,
        fetcher: Fetcher,
        records: Records,
    ) -> None:
        self.key = key
        self.name = name
        self.attempt = attempt  # 1 on the first run; more when a lost worker's task runs again
        self.machines = machines
        self.logger = TaskLogger(logging.getLogger(f"tasks.{name}"), {"task_key": key})
        self.files: list[str] = []
        self.max_pixels = fetcher.settings.max_pixels
        self._report = report
        self._storage = storage
        self._fetcher = fetcher
        self._records = records

    async def progress(self, value: Any) -> None:
        """Publish `value` (any JSON value) as the task's `progress`."""
        await self._report(value)

    async def add_file(
        self, name: str, data: bytes | Path, content_type: str | None = None
    ) -> None:
        """Store an output file now; it is listed in `files` if the task succeeds."""
        check_name(name)
        if content_type is None:
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        await self._storage.put(self.key, name, data, content_type)
        if name not in self.files:
            self.files.append(name)

    async def fetch(self, url: str) -> Fetched:
        """GET `url` through the guard (public addresses only, size cap, timeouts)."""
        return await self._fetcher.get(url)

    def fetch_stream(
        self, url: str
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """GET `url` through the guard, its body in chunks: `async with ctx.fetch_stream(u)`."""
        return self._fetcher.stream(url)

    def machine(self, name: str) -> Machine:
        try:
            return self.machines[name]
        except KeyError:
            raise TaskFailed(f"unknown machine {name!r}") from None

    async def remember(self, name: str, value: str) -> None:
        """Keep `value` for a later attempt of this task (one that runs after its worker died)."""
        if not await self._records.note(self.key, self.attempt, name, value):
            raise TaskFailed("lease lost")

    async def recall(self, name: str) -> str | None:
        """What an earlier attempt remembered under `name`, if any."""
        return await self._records.recall(self.key, name)

    async def output_of(self, key: str, name: str | None) -> AsyncIterator[bytes]:
        """An output file of another task that succeeded (`name` may be omitted if it has one)."""
        files = await self._records.files(key)
        if files is None:
            raise TaskFailed(f"task {key} is unknown or did not succeed")
        if name is None:
            if len(files) != 1:
                raise TaskFailed(f"task {key} has {len(files)} files: name one with source_file")
            name = files[0]
        if name not in files:
            choices = ", ".join(repr(f) for f in files) or "none"
            raise TaskFailed(f"task {key} has no file {name!r} (its files: {choices})")
        return self._storage.read(key, name)
