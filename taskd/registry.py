"""Named tasks: the `task` decorator, parameter models, and the registry loaded from modules."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

from taskd.context import TaskContext
from taskd.errors import TaskdError


class Params(BaseModel):
    """Base of every task's parameter model: unknown parameters are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def configured_machine(name: str, info: ValidationInfo) -> str:
    machines = (info.context or {}).get("machines")
    if machines is not None and name not in machines:
        known = ", ".join(repr(m) for m in sorted(machines)) or "none are configured"
        raise ValueError(f"unknown machine {name!r} (machines: {known})")
    return name


# A task parameter naming one of the `[machines.*]`: any other name is a 400 at create.
MachineName = Annotated[str, AfterValidator(configured_machine)]
P = TypeVar("P", bound=Params)
# Accepted by every task: where its final status is POSTed on success, resp. on error.
CALLBACKS = ("url_callback", "url_errback")
CALLBACK_SCHEMA = {
    name: {"type": "string", "format": "uri", "description": f"POST the final status here on {on}"}
    for name, on in zip(CALLBACKS, ("success", "error"), strict=True)
}
TaskFunction = Callable[[TaskContext, P], Awaitable[Any]]


@dataclass(frozen=True)
class TaskSpec(Generic[P]):
    """A named task: what the catalog shows and what a worker runs."""

    name: str
    params: type[P]
    run: TaskFunction[P]
    description: str
    files: list[str] | None = None
    # Bound by `[worker] job_timeout`; a task that follows work elsewhere (a Slurm job) is not.
    bounded: bool = True

    def catalog_entry(self) -> dict[str, Any]:
        schema = self.params.model_json_schema()
        schema["properties"] = {**schema.get("properties", {}), **CALLBACK_SCHEMA}
        return {
            "name": self.name,
            "description": self.description,
            "parameters": schema,
            "files": self.files,
        }

    def json_parameters(self) -> frozenset[str]:
        """Parameters that take objects or lists: JSON text when they come in a query."""
        properties = self.params.model_json_schema().get("properties", {})
        return frozenset(
            name
            for name, schema in properties.items()
            if {"object", "array"} & set(json_types(schema))
        )


def task(
    name: str, params: type[P], *, files: list[str] | None = None, bounded: bool = True
) -> Callable[[TaskFunction[P]], TaskSpec[P]]:
    """Register an async function under `name`; its docstring's first line is the description.
    `bounded=False` frees it from `[worker] job_timeout` (it enforces its own limit)."""

    def wrap(fn: TaskFunction[P]) -> TaskSpec[P]:
        doc = (fn.__doc__ or "").strip().splitlines()
        return TaskSpec(name, params, fn, doc[0] if doc else "", files, bounded)

    return wrap


def json_types(schema: dict[str, Any]) -> Iterator[str]:
    if "type" in schema:
        yield schema["type"]
    for option in schema.get("anyOf", []):
        yield from json_types(option)
    if "$ref" in schema or "additionalProperties" in schema:
        yield "object"


class RegistryError(TaskdError):
    """Task modules could not be loaded."""


class Registry:
    """The named tasks of one process, by name."""

    def __init__(self, specs: Iterable[TaskSpec[Any]], machines: Iterable[str] = ()) -> None:
        # What parameters are checked against beyond their types: the configured machines.
        self.context = {"machines": frozenset(machines)}
        self.specs: dict[str, TaskSpec[Any]] = {}
        for spec in specs:
            if spec.name in self.specs:
                raise RegistryError(f"task {spec.name!r} is defined twice")
            self.specs[spec.name] = spec

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def __getitem__(self, name: str) -> TaskSpec[Any]:
        return self.specs[name]

    def validate(self, name: str, raw: Any) -> Params:
        """The parameters of task `name` (pydantic's ValidationError if they are not)."""
        params: Params = self.specs[name].params.model_validate(raw, context=self.context)
        return params

    def catalog(self) -> list[dict[str, Any]]:
        return [self.specs[name].catalog_entry() for name in sorted(self.specs)]


def load_registry(modules: Iterable[str], machines: Iterable[str] = ()) -> Registry:
    """Import each module (and, for a package, its submodules) and collect its tasks."""
    specs: list[TaskSpec[Any]] = []
    for name in modules:
        try:
            for module in walk(importlib.import_module(name)):
                specs.extend(v for v in vars(module).values() if isinstance(v, TaskSpec))
        except ImportError as exc:
            raise RegistryError(f"cannot load task module {name!r}: {exc}") from None
    return Registry(specs, machines)


def walk(module: ModuleType) -> Iterator[ModuleType]:
    yield module
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, module.__name__ + "."):
            yield importlib.import_module(info.name)
