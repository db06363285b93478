"""What a running task sees of taskd: its key, a logger, progress reporting, the machines."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from taskd.settings import MachineSettings

ProgressReporter = Callable[[Any], Awaitable[None]]


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
        self.logger = logging.LoggerAdapter(logging.getLogger(f"tasks.{name}"), {"task_key": key})
        self._report = report

    async def progress(self, value: Any) -> None:
        """Publish `value` (any JSON value) as the task's `progress`."""
        await self._report(value)
