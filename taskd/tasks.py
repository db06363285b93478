"""What task modules import: the decorator, the parameter base, the context and the failure."""

from __future__ import annotations

from taskd.context import TaskContext
from taskd.errors import TaskFailed
from taskd.registry import MachineName, Params, task

__all__ = ["MachineName", "Params", "TaskContext", "TaskFailed", "task"]
