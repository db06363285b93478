"""A task as a worker receives it: arq's job encoding (JSON, never pickle) plus its lease."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from arq.jobs import DeserializationError, deserialize_job_raw, serialize_job


def job_payload(name: str, params: dict[str, Any], enqueued_ms: int) -> bytes:
    """arq's job format: the function is the task name, its kwargs the task's parameters."""
    return serialize_job(name, (), params, None, enqueued_ms, serializer=orjson.dumps)


@dataclass(frozen=True)
class Job:
    """One attempt at a task, claimed by a worker; `attempt` is also its lease token."""

    key: str
    attempt: int
    name: str
    params: dict[str, Any]
    account: str
    callbacks: dict[str, str]
    cache: str | None
    # Why the payload could not be decoded, if it could not: the attempt then ends in error.
    unreadable: str | None = None
    enqueued_ms: int = 0  # when it was queued (unix ms): its wait in the queue is measured


def claimed_job(
    key: bytes, attempt: int, payload: bytes, callbacks: bytes, account: bytes, cache: bytes
) -> Job:
    """A claim as step.lua returns it."""
    unreadable = None
    try:
        name, _, params, _, enqueued_ms = deserialize_job_raw(payload, deserializer=orjson.loads)
    except DeserializationError as exc:
        name, params, unreadable, enqueued_ms = "", {}, str(exc), 0
    return Job(
        key.decode(),
        int(attempt),
        name,
        params,
        account.decode(),
        orjson.loads(callbacks) if callbacks else {},
        cache.decode() if cache else None,
        unreadable,
        int(enqueued_ms or 0),
    )
