"""Every Redis key and channel taskd owns, named in one place and all under `[redis] prefix`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Keys:
    """Names under one prefix: two deployments with different prefixes never meet in Redis."""

    prefix: str = "taskd"

    def task(self, key: str) -> str:
        """The task record: a hash holding its status, definition, job and lease."""
        return f"{self.prefix}:task:{key}"

    def channel(self, key: str) -> str:
        """Where every status change of a task is published as "version json"."""
        return f"{self.prefix}:status:{key}"

    @property
    def channel_prefix(self) -> str:
        return self.channel("")

    def pending(self, account: str) -> str:
        """An account's queued + executing tasks (max_pending)."""
        return f"{self.prefix}:pending:{account}"

    def rate(self, account: str) -> str:
        """An account's tasks created in the last minute (rate_per_minute)."""
        return f"{self.prefix}:rate:{account}"

    def cache(self, account: str, definition: dict[str, Any]) -> str:
        """Identical definitions (same parameters, any order) of one account share an entry."""
        canonical = orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)
        return f"{self.prefix}:cache:{account}:{hashlib.sha256(canonical).hexdigest()}"

    @property
    def queue(self) -> str:
        """The queue: task keys scored by when they were queued (ms); 0 puts one first."""
        return f"{self.prefix}:queue"

    @property
    def leases(self) -> str:
        """Running tasks: a sorted set of task keys scored by when their lease runs out (ms)."""
        return f"{self.prefix}:leases"

    @property
    def wake(self) -> str:
        """Workers' channel: queued task keys, or "abort KEY" for a cancelled running task."""
        return f"{self.prefix}:wake"

    @property
    def workers(self) -> str:
        """Living workers' heartbeats: worker id → JSON (host, running jobs, machines, metrics)."""
        return f"{self.prefix}:workers"

    @property
    def expiring(self) -> str:
        """Tasks whose files are deleted once their record expires, scored by that time (ms)."""
        return f"{self.prefix}:files:expiring"

    @property
    def url_key(self) -> str:
        """The key signing local /v1/files URLs, shared by every front end."""
        return f"{self.prefix}:files:url-key"
