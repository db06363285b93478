"""The error tree; `taskd.web.errors` maps each kind to its HTTP answer, in one place.

TaskdError
├── SettingsError           (taskd.settings) the configuration cannot be used
├── StorageError            (taskd.storage) the configured storage cannot be used
├── TaskFailed              a task ends in `error` with exactly this message
│   └── FetchError          (taskd.fetch) a URL refused by the guard, or its fetch failed
└── RequestError            a client's request cannot be served
    ├── InvalidRequest      400, one entry per problem
    ├── Unauthorized        401, bad credentials
    │   └── LimitReached    401, an account limit (Retry-After where retrying helps)
    ├── Forbidden           403
    ├── NotFound            404, a message
    ├── TooLarge            413, an upload over max_upload_bytes
    └── UnknownKeys         404, one entry per unknown task key
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Location = Literal["body", "querystring", "header", "path"]
MAX_PROBLEMS = 100  # entries of one `errors` list at most: the first ones tell what is wrong


class TaskdError(Exception):
    """Root of every error taskd raises on purpose."""


class TaskFailed(TaskdError):
    """Raise from a task to end it in `error` with exactly this message."""


@dataclass(frozen=True)
class Problem:
    """One entry of a 400/404 `errors` list."""

    name: str
    location: Location
    description: str

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "location": self.location, "description": self.description}


class RequestError(TaskdError):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(RequestError):
    status = 400

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.description for p in problems))
        self.problems = problems


class Unauthorized(RequestError):
    status = 401


class LimitReached(Unauthorized):
    def __init__(self, limit: str, value: int, retry_after: int | None) -> None:
        super().__init__(f"account limit reached: {limit} ({value})")
        self.limit = limit
        self.retry_after = retry_after


class Forbidden(RequestError):
    status = 403


class TooLarge(RequestError):
    status = 413


class NotFound(RequestError):
    status = 404


class UnknownKeys(RequestError):
    status = 404

    def __init__(self, name: str, location: Location, keys: list[str]) -> None:
        self.problems = [Problem(name, location, f"unknown task key: {key}") for key in keys]
        super().__init__("; ".join(p.description for p in self.problems))
