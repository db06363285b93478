"""url_callback / url_errback: the final status POSTed through the guarded fetcher, signed
the Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import time
from collections.abc import Sequence

from taskd.fetch import Fetcher, FetchError, FetchRefused
from taskd.logs import TASK_KEY

log = logging.getLogger(__name__)
# Three attempts in all, waiting longer before each retry.
RETRY_DELAYS = (0.5, 1.5)
WHSEC = "whsec_"
# How long a stopping worker lets deliveries in flight finish.
CLOSE_TIMEOUT = 5.0


def callback_url(callbacks: dict[str, str], status: str) -> str | None:
    return callbacks.get("url_callback" if status == "success" else "url_errback")


def webhook_key(secret: str) -> bytes:
    """The signing key: a `whsec_<base64>` secret's decoded bytes, else its UTF-8 bytes."""
    if secret.startswith(WHSEC):
        try:
            return base64.b64decode(secret[len(WHSEC) :], validate=True)
        except binascii.Error:
            pass
    return secret.encode()


def webhook_headers(message_id: str, body: bytes, key: bytes, now: float) -> dict[str, str]:
    timestamp = str(int(now))
    signed = f"{message_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": f"v1,{signature}",
    }


class Callbacks:
    """Deliveries run in the background: a task's slot is free while its callback retries."""

    def __init__(self, fetcher: Fetcher, retry_delays: Sequence[float] = RETRY_DELAYS) -> None:
        self.fetcher = fetcher
        self.retry_delays = retry_delays
        self.pending: set[asyncio.Task[bool]] = set()

    def send(self, key: str, url: str, status: bytes, signing_key: bytes) -> asyncio.Task[bool]:
        task = asyncio.create_task(
            self.deliver(key, url, status, signing_key), name=f"callback-{key}"
        )
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return task

    async def deliver(self, key: str, url: str, status: bytes, signing_key: bytes) -> bool:
        """POST `status` to `url`; True once a 2xx answered. Never raises: the task is done.

        Every attempt carries the same webhook-id (the task's key: a task ends once), a fresh
        timestamp and the signature over both and the body.
        """
        TASK_KEY.set(key)  # this delivery's own asyncio task: its log lines carry the key
        message_id = f"msg_{key}"
        for attempt, delay in enumerate((0.0, *self.retry_delays), start=1):
            await asyncio.sleep(delay)
            headers = webhook_headers(message_id, status, signing_key, time.time())
            try:
                await self.fetcher.post_json(url, status, headers)
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
