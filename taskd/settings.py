"""Typed settings: a TOML file plus TASKD_* environment overrides, validated at start."""

from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from taskd.errors import TaskdError
from taskd.origins import OriginPattern

DEFAULT_CONFIG = Path("config/taskd.toml")


class SettingsError(TaskdError):
    """The configuration cannot be used; the message names the file and the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    public_url: str = ""
    max_block_seconds: Annotated[float, Field(gt=0)] = 300
    max_body_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    heartbeat: Annotated[float, Field(ge=0)] = 0
    # Keys one status, stream or cancel request may name (a larger list: 400 `tasks`).
    max_keys_per_request: Annotated[int, Field(ge=1)] = 1000
    # POST /v1/upload bodies at most (a 413 beyond); streamed to storage, never held whole.
    max_upload_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024 * 1024
    # Open connections at most (beyond: a JSON 503); 0: a margin below the open-file limit.
    max_connections: Annotated[int, Field(ge=0)] = 0


class RedisSettings(Section):
    url: str = ""
    # High availability: Sentinel addresses ("host:port") and the name of the master they
    # watch; when given, they are asked for the master instead of using `url`.
    sentinels: list[str] = []
    sentinel_master: str = ""
    # Commands in flight at once per worker process (its tasks report progress at once);
    # callers wait for a free connection beyond it. `serve` always uses one, plus its hub.
    max_connections: Annotated[int, Field(ge=1)] = 16
    # Starts every key and channel taskd owns: deployments with different prefixes share a
    # Redis without seeing each other's tasks.
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = "taskd"

    @field_validator("sentinels")
    @classmethod
    def check_sentinels(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"sentinel address {address!r} is not host:port")
        return addresses

    @model_validator(mode="after")
    def check_master(self) -> RedisSettings:
        if self.sentinels and not self.sentinel_master:
            raise ValueError("sentinels need sentinel_master, the name of the master they watch")
        return self

    @property
    def configured(self) -> bool:
        """Whether a Redis to use is named (else `taskd run` starts its own)."""
        return bool(self.url or self.sentinels)


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class TasksSettings(Section):
    modules: list[str] = ["tasks"]


class WorkerSettings(Section):
    max_jobs: Annotated[int, Field(ge=1)] = 50
    job_timeout: Annotated[float, Field(gt=0)] = 3600
    result_ttl: Annotated[int, Field(ge=1)] = 86400
    # Safety net only: workers wake on a pub/sub message the moment a task is queued.
    poll_interval: Annotated[float, Field(gt=0)] = 1.0
    # A running task's lease, renewed by its living worker: a task whose worker died runs
    # again within this many seconds; after max_tries attempts it ends "worker lost".
    lease: Annotated[float, Field(ge=0.5)] = 30
    max_tries: Annotated[int, Field(ge=1)] = 3
    # SIGTERM: running tasks get this long to finish, then go back to the queue at once.
    shutdown_grace: Annotated[float, Field(ge=0)] = 5


class StorageSettings(Section):
    backend: Literal["local", "s3"] = "local"
    path: str = "var/files"
    bucket: str = ""
    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: SecretStr = SecretStr("")
    url_ttl: Annotated[int, Field(ge=1)] = 3600
    cache_ttl: Annotated[int, Field(ge=0)] = 3600

    @model_validator(mode="after")
    def check_bucket(self) -> StorageSettings:
        if self.backend == "s3" and not self.bucket:
            raise ValueError("the s3 backend needs a bucket")
        return self


class FetchSettings(Section):
    # Host names, IP addresses or CIDR networks that may be fetched although not public.
    allow_hosts: list[str] = []
    max_bytes: Annotated[int, Field(gt=0)] = 50 * 1024 * 1024
    connect_timeout: Annotated[float, Field(gt=0)] = 10
    read_timeout: Annotated[float, Field(gt=0)] = 30
    # Decompression bombs: images with more pixels than this are refused before decoding.
    max_pixels: Annotated[int, Field(gt=0)] = 100_000_000


class AccountSettings(Section):
    secret: SecretStr
    signing_keys: list[SecretStr] = []
    # Signs url_callback/url_errback POSTs; empty: the secret. `whsec_<base64>`: those bytes.
    webhook_secret: SecretStr = SecretStr("")
    api_keys: list[SecretStr] = []
    referrers: list[str] = []
    max_pending: Annotated[int, Field(ge=1)] = 1000
    max_tasks_per_request: Annotated[int, Field(ge=1)] = 100
    rate_per_minute: Annotated[int, Field(ge=1)] = 6000

    @property
    def callback_secret(self) -> str:
        return self.webhook_secret.get_secret_value() or self.secret.get_secret_value()

    @field_validator("referrers")
    @classmethod
    def check_referrers(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            OriginPattern.parse(pattern)  # raises ValueError naming the pattern
        return patterns


class MachineSettings(Section):
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    username: str = Field(default_factory=getpass.getuser)
    client_keys: list[str] = []
    # Required to exist: the host key is checked against it, unknown or changed keys refused.
    known_hosts: str = "~/.ssh/known_hosts"
    scheduler: Literal["shell", "slurm"] = "shell"
    # Where relative paths point and each slurm.submit gets its `<workdir>/<task key>`.
    workdir: str = ""
    connect_timeout: Annotated[float, Field(gt=0)] = 10
    # Slurm: all followed jobs are looked at once per interval, with one squeue.
    poll_interval: Annotated[float, Field(gt=0)] = 1
    # taskd's own commands (sbatch, squeue, ls…) end with an error after this long.
    command_timeout: Annotated[float, Field(gt=0)] = 60
    # Channels (commands, SFTP sessions) open at once; sshd refuses more than MaxSessions (10).
    max_channels: Annotated[int, Field(ge=1)] = 8
    # Seconds between SSH keepalives; three unanswered ones mean the connection dropped.
    keepalive: Annotated[float, Field(gt=0)] = 15

    @field_validator("client_keys")
    @classmethod
    def check_keys(cls, paths: list[str]) -> list[str]:
        return [existing_file(path, "client key") for path in paths]

    @field_validator("known_hosts")
    @classmethod
    def check_known_hosts(cls, path: str) -> str:
        return existing_file(path, "known_hosts")


def existing_file(path: str, what: str) -> str:
    expanded = os.path.expanduser(path)
    if not os.path.isfile(expanded):
        raise ValueError(f"{what} file {path} not found")
    return expanded


class Settings(Section):
    server: ServerSettings = ServerSettings()
    redis: RedisSettings = RedisSettings()
    log: LogSettings = LogSettings()
    tasks: TasksSettings = TasksSettings()
    worker: WorkerSettings = WorkerSettings()
    storage: StorageSettings = StorageSettings()
    fetch: FetchSettings = FetchSettings()
    accounts: dict[str, AccountSettings] = {}
    machines: dict[str, MachineSettings] = {}


ENV_OVERRIDES = {
    "TASKD_REDIS_URL": ("redis", "url"),
    "TASKD_HOST": ("server", "host"),
    "TASKD_PORT": ("server", "port"),
}


def config_path(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """`path`, else TASKD_CONFIG, else config/taskd.toml."""
    env = os.environ if env is None else env
    return Path(path or env.get("TASKD_CONFIG") or DEFAULT_CONFIG)


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings file (see config_path) and apply env overrides."""
    env = os.environ if env is None else env
    config = config_path(path, env)
    try:
        data: dict[str, Any] = tomllib.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{config}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{config}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{config}: invalid TOML: {exc}") from None
    for var, (section, key) in ENV_OVERRIDES.items():
        if var in env:
            table = data.setdefault(section, {})
            if isinstance(table, dict):
                table[key] = env[var]
    return parse_settings(data, source=str(config))


def parse_settings(data: Mapping[str, Any], source: str = "<settings>") -> Settings:
    """Validate a settings mapping; errors name the source and the dotted key."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {describe(err)}" for err in exc.errors()
        )
        raise SettingsError(f"{source}: {problems}") from None


def describe(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "value_error":  # our validators' own words, without pydantic's prefix
        return str(err["ctx"]["error"])
    return str(err["msg"])
