"""Task definitions checked against the registry: every problem of a request reported at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from taskd.errors import MAX_PROBLEMS, InvalidRequest, Location, Problem
from taskd.records import NewTask
from taskd.registry import CALLBACKS, Registry


def validate_definitions(
    registry: Registry, value: Any, name: str, location: Location
) -> list[NewTask]:
    """`value` is one definition or a list of them, found at `name` in the request."""
    if value is None:
        raise InvalidRequest([Problem(name, location, f"{name} is missing")])
    if isinstance(value, Mapping):
        pairs = [(name, value)]
    elif isinstance(value, list):
        if not value:
            raise InvalidRequest([Problem(name, location, f"{name} is empty")])
        pairs = [(f"{name}.{i}", d) for i, d in enumerate(value)]
    else:
        raise InvalidRequest(
            [Problem(name, location, f"{name} must be a task definition or a list of them")]
        )
    tasks: list[NewTask] = []
    problems: list[Problem] = []
    for path, definition in pairs:
        try:
            tasks.append(validate_definition(registry, definition, path, location))
        except InvalidRequest as exc:
            problems += exc.problems
            if len(problems) >= MAX_PROBLEMS:  # enough to tell what is wrong: stop working
                break
    if problems:
        raise InvalidRequest(problems)
    return tasks


def validate_definition(
    registry: Registry, definition: Any, path: str, location: Location
) -> NewTask:
    """One definition at `path` ("" for the top level of a GET form's query)."""

    def at(*names: str) -> str:
        return ".".join(n for n in (path, *names) if n)

    if not isinstance(definition, Mapping):
        raise InvalidRequest([Problem(path, location, f"{path} must be an object")])
    task_name = definition.get("task_name")
    if task_name is None:
        raise InvalidRequest([Problem(at("task_name"), location, "task_name is missing")])
    if not isinstance(task_name, str) or task_name not in registry:
        raise InvalidRequest(
            [Problem(at("task_name"), location, f"unknown task name: {task_name!r}")]
        )
    raw = {k: v for k, v in definition.items() if k != "task_name" and k not in CALLBACKS}
    problems: list[Problem] = []
    callbacks: dict[str, str] = {}
    for name in CALLBACKS:
        url = definition.get(name)
        if url is None:
            continue
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            callbacks[name] = url
        else:
            problems.append(Problem(at(name), location, f"{name} must be an http(s) URL"))
    try:
        params = registry.validate(task_name, raw)
    except ValidationError as exc:
        problems += [
            Problem(at(*(str(p) for p in err["loc"])), location, describe(err))
            for err in exc.errors()
        ]
    if problems:
        raise InvalidRequest(problems)
    dumped = params.model_dump(mode="json")
    return NewTask(task_name, {"task_name": task_name, **dumped, **callbacks}, dumped, callbacks)


def describe(err: Mapping[str, Any]) -> str:
    field = str(err["loc"][-1]) if err["loc"] else "value"
    if err["type"] == "missing":
        return f"{field} is missing"
    if err["type"] == "extra_forbidden":
        return f"{field} is not a parameter of this task"
    if err["type"] == "value_error":  # a validator's own words, without pydantic's prefix
        return f"{field}: {err['ctx']['error']}"
    return f"{field}: {err['msg']}"
