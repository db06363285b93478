"""The arq side of a task: queue and key names, the job payload, the worker wake-up channel."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from arq.constants import (
    abort_jobs_ss,
    default_queue_name,
    expires_extra_ms,
    in_progress_key_prefix,
    job_key_prefix,
)
from arq.jobs import serialize_job

if TYPE_CHECKING:
    from taskd.records import NewTask

QUEUE = default_queue_name
ABORTS = abort_jobs_ss
JOB_FUNCTION = "taskd"
JOB_TTL_MS = expires_extra_ms
# Published when a task is queued or aborted: idle workers block on it instead of polling.
WAKE_CHANNEL = "taskd:wake"


def job_key(key: str) -> str:
    return job_key_prefix + key


def in_progress_key(key: str) -> str:
    return in_progress_key_prefix + key


def job_payload(key: str, account: str, task: NewTask, now_ms: int) -> bytes:
    """arq's job encoding with JSON for pickle: nothing read from Redis is ever unpickled."""
    args = (key, account, task.name, task.params, task.callbacks)
    return serialize_job(JOB_FUNCTION, args, {}, None, now_ms, serializer=orjson.dumps)
