"""Task records in Redis: a hash per task; each transition is one Lua script that publishes it."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from taskd.errors import LimitReached
from taskd.jobs import job_payload
from taskd.keys import Keys
from taskd.lua import Script

TERMINAL = frozenset({"success", "error"})
CANCEL_BATCH = 500  # tasks per cancel script: one call, without holding Redis for long


def new_key() -> str:
    """26 characters of base32: 128 random bits, unguessable, also the job id."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def now_ms() -> int:
    return int(time.time() * 1000)


def status_of(json: bytes) -> str:
    """The `status` of a status object composed by status.lua (it always comes first)."""
    return json[11 : json.index(b'"', 11)].decode()


def is_terminal(json: bytes) -> bool:
    return status_of(json) in TERMINAL


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


@dataclass(frozen=True)
class Owner:
    """Who created a task, and the result-cache entry it fills, if any."""

    account: str
    cache: str | None


class Records:
    """Creation, progress, cancellation and reads of task records (the queue does the rest)."""

    def __init__(self, redis: Redis, keys: Keys, result_ttl: int) -> None:
        self.redis = redis
        self.keys = keys
        self.result_ttl = result_ttl
        self._create = Script(redis, keys, "create")
        self._progress = Script(redis, keys, "progress")
        self._cancel = Script(redis, keys, "cancel")
        self._upload = Script(redis, keys, "upload")
        self._note = Script(redis, keys, "note")

    async def create(
        self, account: str, limits: Limits, tasks: Sequence[NewTask], keys: Sequence[str]
    ) -> list[bytes]:
        """Store and enqueue all tasks in one round trip; raise LimitReached if over a limit."""
        reply = await self._run_create(account, limits, tasks, keys, None, None)
        return list(reply[1:])

    async def create_cached(
        self, account: str, limits: Limits, task: NewTask, key: str, cache: CacheEntry
    ) -> tuple[str, Snapshot]:
        """Join the task `cache` names if it is pending or succeeded, else create `key`."""
        while True:
            existing = await self.redis.get(cache.redis_key)
            named = existing.decode() if existing else None
            reply = await self._run_create(account, limits, [task], [key], cache, named)
            if reply[0] == b"joined":
                return reply[1].decode(), Snapshot(int(reply[2]), reply[3])
            if reply[0] == b"created":
                return key, Snapshot(1, reply[1])
            # b"stale": another request changed the entry between our read and the script.

    async def _run_create(
        self,
        account: str,
        limits: Limits,
        tasks: Sequence[NewTask],
        keys: Sequence[str],
        cache: CacheEntry | None,
        named: str | None,
    ) -> list[Any]:
        now = now_ms()
        redis_keys = [self.keys.rate(account), self.keys.pending(account), self.keys.queue]
        redis_keys += [self.keys.task(key) for key in keys]
        args: list[Any] = [
            now,
            limits.rate_per_minute,
            limits.max_pending,
            now_iso(),
            account,
            cache.ttl if cache else 0,
            named or "",
        ]
        for key, new in zip(keys, tasks, strict=True):
            callbacks = orjson.dumps(new.callbacks) if new.callbacks else b""
            definition = orjson.dumps(new.definition)
            args += [key, new.name, definition, job_payload(new.name, new.params, now), callbacks]
        if cache:
            redis_keys += [cache.redis_key, self.keys.task(named or keys[0])]
        reply: list[Any] = await self._create(redis_keys, args)
        if reply[0] == b"limit":
            limit, retry = reply[1].decode(), int(reply[2])
            value = limits.rate_per_minute if limit == "rate_per_minute" else limits.max_pending
            raise LimitReached(limit, value, retry if retry > 0 else None)
        return reply

    async def progress(self, key: str, attempt: int, value: Any) -> None:
        """Publish a running task's progress; ignored unless `attempt` holds its lease."""
        await self._progress([self.keys.task(key)], [key, attempt, orjson.dumps(value)])

    async def create_upload(
        self, account: str, rate_per_minute: int, key: str, result: Any, name: str
    ) -> bytes:
        """The record of an uploaded file, `success` at once; counts toward rate_per_minute."""
        reply: list[Any] = await self._upload(
            [self.keys.rate(account), self.keys.task(key), self.keys.expiring],
            [
                now_ms(),
                rate_per_minute,
                now_iso(),
                account,
                key,
                orjson.dumps(result),
                orjson.dumps([name]),
                self.result_ttl,
            ],
        )
        if reply[0] == b"limit":
            raise LimitReached("rate_per_minute", rate_per_minute, int(reply[2]))
        return bytes(reply[1])

    async def note(self, key: str, attempt: int, name: str, value: str) -> bool:
        """Keep `value` for the task's later attempts; False if `attempt` lost the lease."""
        return bool(await self._note([self.keys.task(key)], [attempt, name, value]))

    async def recall(self, key: str, name: str) -> str | None:
        value = await self.redis.hget(self.keys.task(key), f"note:{name}")  # type: ignore[misc]
        return value.decode() if value else None

    async def files(self, key: str) -> list[str] | None:
        """The files of a task that succeeded; None if it is unknown or did not succeed."""
        status, files = await self.redis.hmget(self.keys.task(key), ["status", "files"])  # type: ignore[misc]
        if status != b"success":
            return None
        return list(orjson.loads(files)) if files else []

    async def cancel(
        self, keys: Sequence[str], owners: Sequence[Owner]
    ) -> list[tuple[bytes, bytes]]:
        """(status json, definition) per key; the definition is b"" unless this call ended it."""
        completed = now_iso()
        replies: list[bytes] = []
        for start in range(0, len(keys), CANCEL_BATCH):
            redis_keys = [self.keys.queue, self.keys.leases]
            args: list[str | int] = [completed, self.result_ttl]
            for key, owner in zip(
                keys[start : start + CANCEL_BATCH],
                owners[start : start + CANCEL_BATCH],
                strict=True,
            ):
                record = self.keys.task(key)
                redis_keys += [record, self.keys.pending(owner.account), owner.cache or record]
                args += [key, "1" if owner.cache else "0"]
            replies += await self._cancel(redis_keys, args)
        return list(zip(replies[::2], replies[1::2], strict=True))

    async def read(self, keys: Sequence[str]) -> list[Snapshot | None]:
        """Current status of each key, None where unknown or expired; one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(self.keys.task(key), ["v", "json"])
            replies = await pipe.execute()
        return [Snapshot(int(v), json) if json else None for v, json in replies]

    async def owners(self, keys: Sequence[str]) -> list[Owner | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(self.keys.task(key), ["account", "cache"])
            replies = await pipe.execute()
        return [
            Owner(account.decode(), cache.decode() if cache else None) if account else None
            for account, cache in replies
        ]
