"""The `taskd` command: run, serve, worker, sign; and the client commands (taskd.console)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
import time

from taskd.connections import require_redis
from taskd.console import CLIENT_COMMANDS, add_commands, run_client
from taskd.errors import TaskdError
from taskd.logs import setup_logging
from taskd.settings import Settings, config_path, load_settings

SERVER_ENVIRONMENT = """environment:
  TASKD_CONFIG     the settings file (when --config is not given)
  TASKD_REDIS_URL  overrides [redis] url
  TASKD_HOST       overrides [server] host
  TASKD_PORT       overrides [server] port"""


def parser() -> argparse.ArgumentParser:
    config_help = "TOML settings (default: $TASKD_CONFIG or config/taskd.toml)"
    p = argparse.ArgumentParser(prog="taskd", description="Asynchronous task queue server.")
    p.add_argument("--config", help=config_help)
    # --config is also accepted after the command; there it must not reset the one before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help=config_help, default=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in [
        ("run", "redis-server + HTTP server + worker, for one machine"),
        ("serve", "the HTTP server (production: several behind a load balancer)"),
        ("worker", "a worker (production: as many as needed)"),
    ]:
        sub.add_parser(
            name,
            help=text,
            description=text,
            parents=[common],
            epilog=SERVER_ENVIRONMENT,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    sign = sub.add_parser(
        "sign",
        help="print URL signed for an account (<img src>)",
        parents=[common],
        epilog=SERVER_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sign.add_argument(
        "url", help="e.g. http://host/v1/create_file/t.jpg?task_name=image.thumb&url=…"
    )
    sign.add_argument("--account", required=True, help="the account whose secret signs")
    sign.add_argument("--ttl", type=int, metavar="SECONDS", help="valid this long (default: ever)")
    add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in CLIENT_COMMANDS:  # a client: the server's settings are not read
        return run_client(args)
    try:
        settings = load_settings(args.config)
        setup_logging(settings.log, args.command)
        return COMMANDS[args.command](settings, args)
    except TaskdError as exc:
        print(f"taskd: {exc}", file=sys.stderr)
        return 2


def run(settings: Settings, args: argparse.Namespace) -> int:
    from taskd.supervisor import run as run_all

    return run_all(settings, config_path(args.config))


def serve(settings: Settings, args: argparse.Namespace) -> int:
    from taskd.process import raise_open_file_limit
    from taskd.web.app import create_app
    from taskd.web.serving import connection_limit, serve_forever

    require_redis(settings.redis)
    host, port = settings.server.host, settings.server.port
    # Every open stream is a file descriptor: allow as many as the system lets us.
    open_files = raise_open_file_limit()
    logging.getLogger("taskd.serve").info("open files: up to %d", open_files)
    limit = connection_limit(settings.server.max_connections, open_files)
    try:
        asyncio.run(serve_forever(create_app(settings), host, port, limit))
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return 0


def worker(settings: Settings, args: argparse.Namespace) -> int:
    require_redis(settings.redis)
    # workers/ is loaded by name, like task modules: nothing in taskd imports it statically.
    importlib.import_module("workers").run_worker(settings)
    return 0


def sign(settings: Settings, args: argparse.Namespace) -> int:
    from taskd.signing import EXPIRES, sign_url

    account = settings.accounts.get(args.account)
    if account is None:
        print(f"taskd: no account {args.account!r} in the settings", file=sys.stderr)
        return 2
    extra = [("account", args.account)]
    if args.ttl is not None:
        extra.append((EXPIRES, str(int(time.time()) + args.ttl)))
    else:
        print("taskd: without --ttl this URL never expires", file=sys.stderr)
    print(sign_url(args.url, account.secret.get_secret_value().encode(), extra))
    return 0


class ServeError(TaskdError):
    """The HTTP server could not start."""


COMMANDS = {"run": run, "serve": serve, "worker": worker, "sign": sign}
