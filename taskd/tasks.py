"""What task modules import: the decorator, the parameter base, the context and the failure."""

from __future__ import annotations

from taskd.context import TaskContext
from taskd.errors import TaskdError
from taskd.registry import Params, task


class TaskFailed(TaskdError):
    """Raise from a task to end it in `error` with exactly this message."""


__all__ = ["Params", "TaskContext", "TaskFailed", "task"]
