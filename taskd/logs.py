"""Logging set-up for every taskd process: text for people, JSON lines for collectors, and
no credential in either."""

from __future__ import annotations

import contextvars
import logging
import re
import sys

import orjson

from taskd.settings import LogSettings

# Credentials wherever a log line may carry them: query strings and form bodies
# (`secret=…`), JSON (`"api_key": "…"`), Python reprs (`'sig': '…'`) and headers
# (`Authorization: Secret …`), in any case, also percent-encoded (`secret%3D…`).
CREDENTIAL_PARAMS = r"secret|api_key|sig|webhook_secret"
REDACTIONS = [
    (re.compile(rf"(?i)\b({CREDENTIAL_PARAMS})(=|%3D)[^&\s'\"\\]*"), r"\1\2[redacted]"),
    (
        re.compile(
            rf"(?i)([\"']?\b(?:{CREDENTIAL_PARAMS})\b[\"']?\s*:\s*)([\"'])(?:\\.|(?!\2).)*\2"
        ),
        r"\1\2[redacted]\2",
    ),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=,]\s*[\"']?)[^\r\n\"',]*"), r"\1[redacted]"),
    # An Authorization value on its own (e.g. quoted from a header line aiohttp refused).
    (re.compile(r"(?i)\b(secret|api-key)(\s+)[^\s'\"\\]+"), r"\1\2[redacted]"),
]


def redact(text: str) -> str:
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        key = getattr(record, "task_key", None)
        if key is not None:
            entry["task_key"] = key
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(entry).decode())


# The task an asyncio task works for: each attempt sets it, so every line logged while it
# runs (taskd's own modules included: fetch, remote, storage) carries the task's key.
TASK_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_key", default=None)


class TaskKeyFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "task_key", None) is None:
            record.task_key = TASK_KEY.get()
        return True


def setup_logging(settings: LogSettings, process: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TaskKeyFilter())
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            TextFormatter(f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
