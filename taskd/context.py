"""What a running task sees of taskd: its key, a logger, progress reporting, the machines."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from taskd.settings import MachineSettings

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
    ) -> None:
        self.key = key
        self.name = name
        self.machines = machines
        self.logger = TaskLogger(logging.getLogger(f"tasks.{name}"), {"task_key": key})
        self._report = report

    async def progress(self, value: Any) -> None:
        """Publish `value` (any JSON value) as the task's `progress`."""
        await self._report(value)
