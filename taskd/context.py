"""What a running task sees of taskd: its key, a logger, progress, files, fetching, machines."""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from taskd.fetch import Fetched, Fetcher
from taskd.settings import MachineSettings
from taskd.storage import Storage, check_name

ProgressReporter = Callable[[Any], Awaitable[None]]


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
        report: ProgressReporter,
        machines: Mapping[str, MachineSettings],
        storage: Storage,
        fetcher: Fetcher,
    ) -> None:
        self.key = key
        self.name = name
        self.machines = machines
        self.logger = TaskLogger(logging.getLogger(f"tasks.{name}"), {"task_key": key})
        self.files: list[str] = []
        self.max_pixels = fetcher.settings.max_pixels
        self._report = report
        self._storage = storage
        self._fetcher = fetcher

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
