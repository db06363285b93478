"""The `taskd` command: run, serve, worker, submit, sign."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
import time
from typing import Any

import aiohttp
import orjson

from taskd.connections import require_redis
from taskd.errors import TaskdError
from taskd.logs import setup_logging
from taskd.settings import Settings, config_path, load_settings


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
        sub.add_parser(name, help=text, parents=[common])
    submit = sub.add_parser("submit", help="create a task and print its status", parents=[common])
    submit.add_argument("task_name")
    submit.add_argument("params", nargs="*", metavar="KEY=VALUE", help="VALUE is JSON or text")
    mode = submit.add_mutually_exclusive_group()
    mode.add_argument("--block", action="store_true", help="wait for the result")
    mode.add_argument("--stream", action="store_true", help="print every status change")
    submit.add_argument("--url", help="server URL (default: from the settings)")
    submit.add_argument("--secret", help="account secret (default: the first account's)")
    sign = sub.add_parser(
        "sign", help="print URL signed for an account (<img src>)", parents=[common]
    )
    sign.add_argument(
        "url", help="e.g. http://host/v1/create_file/t.jpg?task_name=image.thumb&url=…"
    )
    sign.add_argument("--account", required=True, help="the account whose secret signs")
    sign.add_argument("--ttl", type=int, metavar="SECONDS", help="valid this long (default: ever)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
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


def submit(settings: Settings, args: argparse.Namespace) -> int:
    from taskd.client import ApiError, Client

    definition: dict[str, Any] = {"task_name": args.task_name}
    for item in args.params:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"taskd: {item!r} is not KEY=VALUE", file=sys.stderr)
            return 2
        definition[name] = parse_value(value)
    url = args.url or f"http://{settings.server.host}:{settings.server.port}"
    secret = args.secret or next(
        (a.secret.get_secret_value() for a in settings.accounts.values()), ""
    )

    async def go() -> int:
        async with aiohttp.ClientSession() as session:
            client = Client(session, url, secret)
            try:
                if args.stream:
                    async for status in client.create_stream(definition):
                        print(orjson.dumps(status).decode(), flush=True)
                else:
                    statuses = await client.create(definition, block=args.block)
                    print(orjson.dumps(statuses, option=orjson.OPT_INDENT_2).decode())
            except ApiError as exc:
                print(orjson.dumps(exc.body).decode(), file=sys.stderr)
                return 1
            except aiohttp.ClientError as exc:
                print(f"taskd: cannot reach {url}: {exc}", file=sys.stderr)
                return 1
        return 0

    return asyncio.run(go())


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


def parse_value(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


COMMANDS = {"run": run, "serve": serve, "worker": worker, "submit": submit, "sign": sign}
