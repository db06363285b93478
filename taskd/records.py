"""Task records in Redis: a hash per task; each transition is one Lua script that publishes it."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis

from taskd import queue
from taskd.errors import LimitReached
from taskd.storage import EXPIRING

TERMINAL = frozenset({"success", "error"})


def new_key() -> str:
    """26 characters of base32: 128 random bits, unguessable, also the arq job id."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def record_key(key: str) -> str:
    return f"taskd:task:{key}"


def channel(key: str) -> str:
    return f"taskd:status:{key}"


def pending_key(account: str) -> str:
    return f"taskd:pending:{account}"


def rate_key(account: str) -> str:
    return f"taskd:rate:{account}"


def cache_key(account: str, definition: dict[str, Any]) -> str:
    """Identical definitions (same parameters, any order) of one account share an entry."""
    canonical = orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)
    return f"taskd:cache:{account}:{hashlib.sha256(canonical).hexdigest()}"


def status_of(json: bytes) -> str:
    """The `status` of a status object composed by status.lua (it always comes first)."""
    return json[11 : json.index(b'"', 11)].decode()


def is_terminal(json: bytes) -> bool:
    return status_of(json) in TERMINAL


def load_script(name: str) -> str:
    files = resources.files("taskd") / "scripts"
    return (files / "status.lua").read_text() + "\n" + (files / f"{name}.lua").read_text()


@dataclass(frozen=True)
class NewTask:
    name: str
    definition: dict[str, Any]
    params: dict[str, Any]
    callbacks: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CacheEntry:
    """Where identical requests find their task, and how long a success is reused."""

    redis_key: str
    ttl: int


@dataclass(frozen=True)
class Limits:
    rate_per_minute: int
    max_pending: int


@dataclass(frozen=True)
class Snapshot:
    """A record's current status object and its version (it grows with every change)."""

    version: int
    json: bytes


class Records:
    """Reads and transitions of task records; the only module that writes them."""

    def __init__(self, redis: Redis, result_ttl: int) -> None:
        self.redis = redis
        self.result_ttl = result_ttl
        self._create = redis.register_script(load_script("create"))
        self._start = redis.register_script(load_script("start"))
        self._progress = redis.register_script(load_script("progress"))
        self._finish = redis.register_script(load_script("finish"))
        self._cancel = redis.register_script(load_script("cancel"))

    async def create(
        self, account: str, limits: Limits, tasks: Sequence[NewTask], keys: Sequence[str]
    ) -> list[bytes]:
        """Store and enqueue all tasks in one round trip; raise LimitReached if over a limit."""
        reply = await self._run_create(account, limits, tasks, keys, None)
        return list(reply[1:])

    async def create_cached(
        self, account: str, limits: Limits, task: NewTask, key: str, cache: CacheEntry
    ) -> tuple[str, Snapshot]:
        """Join the task `cache` names if it is pending or succeeded, else create `key`."""
        reply = await self._run_create(account, limits, [task], [key], cache)
        if reply[0] == 2:
            return reply[1].decode(), Snapshot(int(reply[2]), reply[3])
        return key, Snapshot(1, reply[1])

    async def _run_create(
        self,
        account: str,
        limits: Limits,
        tasks: Sequence[NewTask],
        keys: Sequence[str],
        cache: CacheEntry | None,
    ) -> list[Any]:
        now_ms = int(time.time() * 1000)
        redis_keys = [rate_key(account), pending_key(account), queue.QUEUE]
        args: list[Any] = [
            now_ms,
            limits.rate_per_minute,
            limits.max_pending,
            now_iso(),
            account,
            queue.JOB_TTL_MS,
            cache.ttl if cache else 0,
        ]
        for key, new in zip(keys, tasks, strict=True):
            redis_keys += [record_key(key), queue.job_key(key)]
            args += [
                key,
                new.name,
                orjson.dumps(new.definition),
                queue.job_payload(key, account, new, now_ms),
            ]
        if cache:
            redis_keys.append(cache.redis_key)
        reply: list[Any] = await self._create(keys=redis_keys, args=args)
        if reply[0] == 0:
            limit, retry = reply[1].decode(), int(reply[2])
            value = limits.rate_per_minute if limit == "rate_per_minute" else limits.max_pending
            raise LimitReached(limit, value, retry if retry > 0 else None)
        return reply

    async def start(self, key: str) -> bool:
        return bool(await self._start(keys=[record_key(key)], args=[key, now_iso()]))

    async def progress(self, key: str, value: Any) -> None:
        await self._progress(keys=[record_key(key)], args=[key, orjson.dumps(value)])

    async def finish(
        self, key: str, account: str, status: str, result: bytes, files: Sequence[str] = ()
    ) -> bool:
        """Record the outcome (`result` is JSON); False if the task had already ended."""
        done = await self._finish(
            keys=[record_key(key), pending_key(account), EXPIRING],
            args=[
                key,
                status,
                now_iso(),
                result,
                orjson.dumps(list(files)) if files else b"",
                self.result_ttl,
                int(time.time() * 1000),
            ],
        )
        return bool(done)

    async def cancel(self, keys: Sequence[str], account: str) -> list[tuple[bytes, bytes]]:
        """(status json, definition) per key; the definition is b"" unless this call ended it."""
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                await self._cancel(
                    keys=[
                        record_key(key),
                        pending_key(account),
                        queue.QUEUE,
                        queue.job_key(key),
                        queue.ABORTS,
                        queue.in_progress_key(key),
                    ],
                    args=[key, now_iso(), self.result_ttl, now_ms],
                    client=pipe,
                )
            return [(json, definition) for json, definition in await pipe.execute()]

    async def read(self, keys: Sequence[str]) -> list[Snapshot | None]:
        """Current status of each key, None where unknown or expired; one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(record_key(key), ["v", "json"])
            replies = await pipe.execute()
        return [Snapshot(int(v), json) if json else None for v, json in replies]

    async def owners(self, keys: Sequence[str]) -> list[str | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(record_key(key), "account")
            replies = await pipe.execute()
        return [r.decode() if r else None for r in replies]

    async def owner_of(self, key: str) -> str | None:
        return (await self.owners([key]))[0]
