"""The client commands of `taskd`: submit, status, watch, cancel, tasks, upload, download.

They talk to a server through `taskd.client` only, with the URL and credentials of the
flags or of TASKD_URL, TASKD_SECRET, TASKD_API_KEY (never of a server's config file). Live
progress and tables are drawn with rich; `--json` prints the statuses instead (NDJSON while
following). Exit status: 0 when the request succeeded (and every followed task too), 1 when
a task failed, 2 for usage, credential or connection errors — one line, no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import orjson

from taskd.client import AsyncClient, ClientError, Status

ENVIRONMENT = """environment:
  TASKD_URL      the server (default http://127.0.0.1:8080)
  TASKD_SECRET   an account's secret
  TASKD_API_KEY  an account's API key (with --origin, or TASKD_ORIGIN)"""
RESULT_WIDTH = 60


def add_commands(sub: Any) -> None:
    """The client commands on the `taskd` parser's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("TASKD_URL", "http://127.0.0.1:8080"))
    common.add_argument("--secret", default=os.environ.get("TASKD_SECRET"))
    common.add_argument("--api-key", default=os.environ.get("TASKD_API_KEY"))
    common.add_argument("--origin", default=os.environ.get("TASKD_ORIGIN"))
    common.add_argument("--json", action="store_true", help="print JSON statuses, no tables")
    keys = argparse.ArgumentParser(add_help=False)
    keys.add_argument("keys", nargs="+", metavar="KEY")

    def command(name: str, text: str, *parents: argparse.ArgumentParser) -> Any:
        return sub.add_parser(
            name,
            help=text,
            description=text,
            parents=[common, *parents],
            epilog=ENVIRONMENT,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    submit = command("submit", "create a task; with --block or --stream, follow it to its end")
    submit.add_argument("task_name")
    submit.add_argument("params", nargs="*", metavar="KEY=VALUE", help="VALUE is JSON or text")
    mode = submit.add_mutually_exclusive_group()
    mode.add_argument("--block", action="store_true", help="wait for the result")
    mode.add_argument("--stream", action="store_true", help="show progress live until the end")
    command("status", "the current status of tasks", keys)
    command("watch", "follow tasks live until they end", keys)
    command("cancel", "cancel tasks (of your account)", keys)
    command("tasks", "the catalog: every task and its parameters")
    upload = command("upload", "upload a file; its key serves as remote.upload's source_task")
    upload.add_argument("file")
    upload.add_argument("--name", help="the file's name on the server (default: its own)")
    download = command("download", "save a task's output file")
    download.add_argument("key")
    download.add_argument("filename", nargs="?", help="which file, if the task made several")
    download.add_argument("-o", "--output", required=True, help="where to write it")


def run_client(args: argparse.Namespace) -> int:
    """Run one client command; its exit status."""
    client = AsyncClient(args.url, secret=args.secret, api_key=args.api_key, origin=args.origin)
    command = CLIENT_COMMANDS[args.command]

    async def main() -> int:
        async with client:
            return await command(client, args)

    try:
        return asyncio.run(main())
    except ClientError as exc:
        print(f"taskd: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def parse_value(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def definition_of(args: argparse.Namespace) -> dict[str, Any]:
    definition: dict[str, Any] = {"task_name": args.task_name}
    for item in args.params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ClientError(f"{item!r} is not KEY=VALUE")
        definition[name] = parse_value(value)
    return definition


def exit_status(statuses: list[Status], followed: bool) -> int:
    return 1 if followed and any(s["status"] != "success" for s in statuses) else 0


async def submit(client: AsyncClient, args: argparse.Namespace) -> int:
    definition = definition_of(args)
    if args.stream:
        statuses = await follow(client.create_stream(definition), args.json)
    else:
        statuses = await client.create(definition, block=args.block)
        show(statuses, args.json)
    return exit_status(statuses, args.stream or args.block)


async def status(client: AsyncClient, args: argparse.Namespace) -> int:
    statuses = await client.status(args.keys)
    show(statuses, args.json)
    return exit_status(statuses, all(s["status"] in ("success", "error") for s in statuses))


async def watch(client: AsyncClient, args: argparse.Namespace) -> int:
    return exit_status(await follow(client.status_stream(args.keys), args.json), True)


async def cancel(client: AsyncClient, args: argparse.Namespace) -> int:
    show(await client.cancel(args.keys), args.json)
    return 0


async def tasks(client: AsyncClient, args: argparse.Namespace) -> int:
    catalog = await client.catalog()
    if args.json:
        print(orjson.dumps(catalog).decode())
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("task", "parameters", "description", box=None, pad_edge=False)
    for entry in catalog:
        table.add_row(
            entry["name"], escape(parameters_of(entry["parameters"])), escape(entry["description"])
        )
    Console().print(table)
    return 0


def parameters_of(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    names = [n for n in schema.get("properties", {}) if n not in ("url_callback", "url_errback")]
    return ", ".join(name if name in required else f"[{name}]" for name in names)


async def upload(client: AsyncClient, args: argparse.Namespace) -> int:
    show([await client.upload(args.file, args.name)], args.json)
    return 0


async def download(client: AsyncClient, args: argparse.Namespace) -> int:
    path = await client.download(args.key, args.output, args.filename)
    if not args.json:
        print(f"saved {path}")
    return 0


CLIENT_COMMANDS: dict[str, Callable[[AsyncClient, argparse.Namespace], Coroutine[Any, Any, int]]]
CLIENT_COMMANDS = {
    "submit": submit,
    "status": status,
    "watch": watch,
    "cancel": cancel,
    "tasks": tasks,
    "upload": upload,
    "download": download,
}


# -- output ---------------------------------------------------------------------------------


def show(statuses: list[Status], as_json: bool) -> None:
    if as_json:
        print(orjson.dumps(statuses).decode())
        return
    from rich.console import Console

    Console().print(results_table(statuses))


def short(value: Any) -> str:
    """A value in a table cell: JSON, cut to RESULT_WIDTH, never read as rich markup."""
    from rich.markup import escape

    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return escape(text if len(text) <= RESULT_WIDTH else text[: RESULT_WIDTH - 1] + "…")


def results_table(statuses: list[Status]) -> Any:
    from rich.table import Table

    table = Table("key", "status", "progress", "result", "files", box=None, pad_edge=False)
    colours = {"success": "green", "error": "red", "executing": "yellow"}
    for s in statuses:
        table.add_row(
            s["key"],
            f"[{colours.get(s['status'], 'white')}]{s['status']}[/]",
            short(s["progress"]) if "progress" in s else "",
            short(s["result"]) if "result" in s else "",
            ", ".join(s.get("files", [])),
        )
    return table


async def follow(stream: AsyncIterator[Status], as_json: bool) -> list[Status]:
    """Each task's progress live (a bar for numbers, the text otherwise), then the results."""
    latest: dict[str, Status] = {}
    if as_json:
        async for status in stream:
            latest[status["key"]] = status
            print(orjson.dumps(status).decode(), flush=True)
        return list(latest.values())
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskID, TextColumn

    console = Console()
    bars: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[state]}"),
        console=console,
        transient=False,
    ) as progress:
        async for status in stream:
            key = status["key"]
            latest[key] = status
            if key not in bars:
                bars[key] = progress.add_task(key, total=100, state="")
            value = status.get("progress")
            number = isinstance(value, int | float) and not isinstance(value, bool)
            done = status["status"] in ("success", "error")
            completed = 100 if done and status["status"] == "success" else value if number else None
            state = status["status"] if done or value is None else ("" if number else str(value))
            progress.update(bars[key], completed=completed, state=state)
    console.print(results_table(list(latest.values())))
    return list(latest.values())
