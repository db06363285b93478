"""GET /v1/openapi.json: OpenAPI 3.1 of every route, with each task's parameters from the
registry (a task definition is one of the tasks' schemas, told apart by `task_name`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from taskd import __version__
from taskd.registry import CALLBACK_SCHEMA, Registry
from taskd.web.responses import json_bytes
from taskd.web.state import OPENAPI

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def answer(description: str, schema: dict[str, Any] | None = None, kind: str = JSON) -> Any:
    return {"description": description, "content": {kind: {"schema": schema or {}}}}


ERRORS = {
    "400": answer("invalid parameters, one entry per problem", ref("Problems")),
    "401": answer("invalid credentials, or an account limit reached", ref("Message")),
    "404": answer("unknown path, task key or file", {"anyOf": [ref("Problems"), ref("Message")]}),
    "413": answer("body too large", ref("Message")),
    "503": answer("Redis cannot be reached (Retry-After)", ref("Message")),
}
KEYS = {
    "tasks": {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        "description": "task keys (repeated, or comma-separated in a query)",
    }
}
CREDENTIALS = {
    "secret": {"type": "string"},
    "api_key": {"type": "string"},
}
STREAM = {
    "description": "line 1: the list of statuses; then one status per change (NDJSON), or "
    "with Accept: text/event-stream the same as Server-Sent Events",
    "content": {
        "application/x-ndjson": {"schema": {"type": "string"}},
        "text/event-stream": {"schema": {"type": "string"}},
    },
}
PAGE = {
    "summary": "the live page: submit tasks from the catalog, watch them run",
    "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {}}}}},
}
REDIRECT = {"302": {"description": "redirect to the output file (Location)"}}


def query(**names: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "schema": s} for n, s in names.items()]


def path_param(*names: str) -> list[dict[str, Any]]:
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]


def body(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required or []}
    return {"content": {JSON: {"schema": schema}}}


def operation(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": {**responses, **ERRORS}, **extra}


def definitions(registry: Registry) -> tuple[dict[str, Any], dict[str, Any]]:
    """One schema per task (its parameters plus `task_name`), and the models they refer to."""
    components: dict[str, Any] = {}
    options = []
    for name in sorted(registry.specs):
        schema = registry[name].params.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components.update(schema.pop("$defs", {}))
        schema["properties"] = {
            "task_name": {"const": name},
            **schema.get("properties", {}),
            **CALLBACK_SCHEMA,
        }
        schema["required"] = ["task_name", *schema.get("required", [])]
        schema["title"] = name
        components[f"task.{name}"] = schema
        options.append(ref(f"task.{name}"))
    return {"oneOf": options, "discriminator": {"propertyName": "task_name"}}, components


STATUS = {
    "type": "object",
    "required": ["status", "key", "events"],
    "additionalProperties": False,
    "properties": {
        "status": {"enum": ["queued", "executing", "success", "error"]},
        "key": {"type": "string", "pattern": "^[A-Z2-7]{26}$"},
        "progress": {},
        "events": {
            "type": "object",
            "additionalProperties": False,
            "required": ["queued"],
            "properties": {e: {"type": "string"} for e in ("queued", "started", "completed")},
        },
        "result": {},
        "files": {"type": "array", "items": {"type": "string"}},
    },
}
HEALTH = {
    "type": "object",
    "required": ["status", "redis", "workers", "queue", "storage", "machines"],
    "properties": {
        "status": {"enum": ["ok", "degraded", "down"]},
        "redis": {"type": "object", "required": ["ok", "latency_ms"]},
        "workers": {
            "type": "array",
            "items": {"type": "object", "required": ["id", "host", "jobs", "last_seen"]},
        },
        "queue": {"type": ["integer", "null"]},
        "storage": {"type": "object", "required": ["ok", "backend"]},
        "machines": {"type": "object"},
    },
}


def build_spec(registry: Registry) -> dict[str, Any]:
    definition, components = definitions(registry)
    statuses = answer("the statuses, in request order", ref("Statuses"))
    tasks_body = {"anyOf": [ref("Definition"), {"type": "array", "items": ref("Definition")}]}
    keys_body = body({**KEYS, "block": {"type": "boolean"}}, ["tasks"])
    create_file_get = operation(
        "queue a task from the query (`task_name` and its parameters), wait, redirect",
        {**REDIRECT, "504": answer("not finished within max_block_seconds", ref("Status"))},
        parameters=query(
            task_name={"type": "string"},
            account={"type": "string"},
            sig={"type": "string"},
            expires={"type": "string"},
        ),
    )
    create_file_post = operation(
        "queue a task, wait, redirect to its file",
        {**REDIRECT, "504": answer("not finished within max_block_seconds", ref("Status"))},
        requestBody=body({"task": ref("Definition"), **CREDENTIALS}, ["task"]),
    )
    file_get = operation(
        "wait for a task, redirect to its file",
        {**REDIRECT, "504": answer("not finished", ref("Status"))},
        parameters=query(task={"type": "string"}),
    )
    status_get = operation(
        "statuses of task keys", {"200": statuses}, parameters=query(**KEYS, block={})
    )
    status_post = operation("statuses of task keys", {"200": statuses}, requestBody=keys_body)
    stream_get = operation("follow tasks", {"200": STREAM}, parameters=query(**KEYS))
    stream_post = operation("follow tasks", {"200": STREAM}, requestBody=keys_body)
    paths: dict[str, Any] = {
        "/v1/create": {
            "post": operation(
                "create tasks (and with block=true wait for them)",
                {"200": statuses},
                requestBody=body(
                    {"tasks": tasks_body, "block": {"type": "boolean"}, **CREDENTIALS}, ["tasks"]
                ),
            )
        },
        "/v1/create_stream": {
            "post": operation(
                "create tasks and follow them",
                {"200": STREAM},
                requestBody=body({"tasks": tasks_body, **CREDENTIALS}, ["tasks"]),
            )
        },
        "/v1/status": {"get": status_get, "post": status_post},
        "/v1/status_stream": {"get": stream_get, "post": stream_post},
        "/v1/stream": {"get": stream_get, "post": stream_post},
        "/v1/tasks": {"get": operation("the catalog", {"200": answer("tasks", ref("Catalog"))})},
        "/v1/cancel": {
            "post": operation(
                "cancel tasks of your account",
                {"200": statuses, "403": answer("another account's task", ref("Message"))},
                requestBody=keys_body,
            )
        },
        "/v1/create_file": {"get": create_file_get, "post": create_file_post},
        "/v1/create_file/{filename}": {
            "get": {
                **create_file_get,
                "parameters": [*path_param("filename"), *create_file_get["parameters"]],
            },
            "post": {**create_file_post, "parameters": path_param("filename")},
        },
        "/v1/file": {"get": file_get},
        "/v1/file/{filename}": {
            "get": {**file_get, "parameters": [*path_param("filename"), *file_get["parameters"]]}
        },
        "/v1/files/{key}/{name}": {
            "get": operation(
                "a stored output file (signed URL of the local backend)",
                {
                    "200": {"description": "the file"},
                    "403": answer("bad signature", ref("Message")),
                },
                parameters=[
                    *path_param("key", "name"),
                    *query(expires={"type": "string"}, sig={"type": "string"}),
                ],
            )
        },
        "/v1/upload/{filename}": {
            "post": operation(
                "upload a file as a finished `upload` task",
                {"200": statuses},
                parameters=path_param("filename"),
                requestBody={
                    "content": {
                        "application/octet-stream": {"schema": {"type": "string"}},
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {"secret": {}, "api_key": {}, "file": {}},
                                "required": ["file"],
                            }
                        },
                    }
                },
            )
        },
        "/v1/health": {
            "get": operation(
                "Redis, workers, queue, storage, machines",
                {"200": answer("health", ref("Health")), "503": answer("down", ref("Health"))},
            )
        },
        "/metrics": {
            "get": operation(
                "Prometheus metrics of this server and every living worker",
                {"200": answer("the text exposition format", {"type": "string"}, "text/plain")},
            )
        },
        "/v1/client.js": {
            "get": operation(
                "the JavaScript client (an ES module)",
                {"200": answer("the module", {"type": "string"}, "text/javascript")},
            )
        },
        "/": {"get": PAGE},
        "/ui": {"get": PAGE},
        "/ui/{name}": {
            "get": operation(
                "the live page's script and style sheet",
                {"200": {"description": "app.js or style.css"}},
                parameters=path_param("name"),
            )
        },
        "/v1/openapi.json": {
            "get": operation("this description", {"200": answer("OpenAPI 3.1", {})})
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "taskd",
            "version": __version__,
            "description": "The Dragon REST API, and taskd's additions.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                **components,
                "Definition": definition,
                "Status": STATUS,
                "Statuses": {"type": "array", "items": ref("Status")},
                "Message": {
                    "type": "object",
                    "required": ["status", "message"],
                    "properties": {"status": {"const": "error"}, "message": {"type": "string"}},
                },
                "Problems": {
                    "type": "object",
                    "required": ["status", "errors"],
                    "properties": {
                        "status": {"const": "error"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "location", "description"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "location": {"enum": ["body", "querystring", "header", "path"]},
                                    "description": {"type": "string"},
                                },
                            },
                        },
                    },
                },
                "Catalog": {
                    "type": "object",
                    "required": ["tasks"],
                    "properties": {
                        "tasks": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "description", "parameters", "files"],
                            },
                        }
                    },
                },
                "Health": HEALTH,
            }
        },
    }


async def openapi(request: web.Request) -> web.StreamResponse:
    return json_bytes(request.app[OPENAPI])
