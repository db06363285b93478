"""url_callback / url_errback: the final status POSTed through the guarded fetcher."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from taskd.fetch import Fetcher, FetchError, FetchRefused

log = logging.getLogger(__name__)
# Three attempts in all, waiting longer before each retry.
RETRY_DELAYS = (0.5, 1.5)
# How long a stopping worker lets deliveries in flight finish.
CLOSE_TIMEOUT = 5.0


def callback_url(callbacks: dict[str, str], status: str) -> str | None:
    return callbacks.get("url_callback" if status == "success" else "url_errback")


class Callbacks:
    """Deliveries run in the background: a task's slot is free while its callback retries."""

    def __init__(self, fetcher: Fetcher, retry_delays: Sequence[float] = RETRY_DELAYS) -> None:
        self.fetcher = fetcher
        self.retry_delays = retry_delays
        self.pending: set[asyncio.Task[bool]] = set()

    def send(self, key: str, url: str, status: bytes) -> asyncio.Task[bool]:
        task = asyncio.create_task(self.deliver(key, url, status), name=f"callback-{key}")
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return task

    async def deliver(self, key: str, url: str, status: bytes) -> bool:
        """POST `status` to `url`; True once a 2xx answered. Never raises: the task is done."""
        for attempt, delay in enumerate((0.0, *self.retry_delays), start=1):
            await asyncio.sleep(delay)
            try:
                await self.fetcher.post_json(url, status)
            except FetchRefused as exc:
                log.warning("task %s: callback not sent: %s", key, exc)
                return False
            except FetchError as exc:
                log.warning("task %s: callback attempt %d failed: %s", key, attempt, exc)
                continue
            log.info("task %s: callback delivered to %s", key, url)
            return True
        return False

    async def close(self) -> None:
        if not self.pending:
            return
        _, late = await asyncio.wait(set(self.pending), timeout=CLOSE_TIMEOUT)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
