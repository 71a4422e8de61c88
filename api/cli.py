"""`amend` command line: serve, migrate, projects, endpoints, db copy, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from api import __version__
from api.config import ConfigError, Settings
from api.core.clock import iso_ms
from api.core.errors import AmendError
from api.core.models import Plan
from api.services import projects
from api.services.container import Services
from api.store import Database, migrate
from api.store import copy as store_copy
from api.store import outbox as outbox_store

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amend", description=__doc__)
    parser.add_argument("--version", action="version", version=f"amend {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database, then serve HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--dev", action="store_true", help="GraphiQL, introspection, no Secure")
    serve.add_argument(
        "--demo", action="store_true", help="create (or re-key) a project 'demo' and print its keys"
    )

    sub.add_parser("migrate", help="apply database migrations and exit")

    project = sub.add_parser("project", help="manage projects").add_subparsers(
        dest="project_command", required=True
    )
    create = project.add_parser("create", help="create a project with its keys")
    create.add_argument("name")
    create.add_argument("--origin", action="append", default=[], help="allowed origin (repeat)")
    group = create.add_mutually_exclusive_group()
    group.add_argument(
        "--allow-no-origin", dest="allow_no_origin", action="store_true", default=True
    )
    group.add_argument("--deny-no-origin", dest="allow_no_origin", action="store_false")
    create.add_argument("--plan", choices=[p.value for p in Plan], default=Plan.PERSONAL.value)
    create.add_argument("--json", action="store_true")
    rotate = project.add_parser(
        "rotate-keys", help="give a project a new API key and master key (the old ones stop)"
    )
    rotate.add_argument("project", help="project id or name")
    rotate.add_argument("--json", action="store_true")

    endpoint = sub.add_parser("endpoint", help="manage endpoints").add_subparsers(
        dest="endpoint_command", required=True
    )
    ecreate = endpoint.add_parser("create", help="add an endpoint (a user pool) to a project")
    ecreate.add_argument("--project", required=True, help="project id or name")
    ecreate.add_argument("name")
    ecreate.add_argument("--json", action="store_true")

    sub.add_parser("export-schema", help="print the GraphQL SDL")

    db_cmd = sub.add_parser("db", help="database operations").add_subparsers(
        dest="db_command", required=True
    )
    copy = db_cmd.add_parser(
        "copy", help="copy everything into another (empty) database, migrated first"
    )
    copy.add_argument("--to", required=True, metavar="URL", help="the target database URL")

    outbox_cmd = sub.add_parser("outbox", help="list queued and delivered security notices")
    outbox_cmd.add_argument("--json", action="store_true")
    return parser


async def _with_services(settings: Settings, fn: object) -> object:
    services = Services.build(settings)
    try:
        await migrate.upgrade(services.db)
        return await fn(services)  # type: ignore[operator]
    finally:
        await services.close()


def _print_project(created: projects.CreatedProject, as_json: bool) -> None:
    if as_json:
        print(json.dumps(created.as_json()))
        return
    data = created.as_json()
    print(f"project    {data['name']} ({data['id']}), plan {data['plan']}")
    print(f"api key    {data['api_key']}")
    print(f"master key {data['master_key']}   (shown once: store it now)")
    print(f"endpoints  {', '.join(created.endpoints)}")


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "export-schema":
        from api.graphql.schema import export_sdl

        sys.stdout.write(export_sdl())
        return
    dev = bool(getattr(args, "dev", False))
    try:
        settings = Settings.from_env(dev=dev)
    except ConfigError as error:
        sys.exit(f"amend: {error}")
    from api.logs import configure

    configure(settings.log_level)
    try:
        _run(args, settings)
    except AmendError as error:
        sys.exit(f"amend: {error.message}")


def _run(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "migrate":
        asyncio.run(_with_services(settings, lambda s: migrate.upgrade(s.db)))
        print("database is at the newest schema")
    elif args.command == "project" and args.project_command == "rotate-keys":
        rotated = asyncio.run(
            _with_services(settings, lambda s: projects.rotate_keys(s, project=args.project))
        )
        assert isinstance(rotated, projects.CreatedProject)
        _print_project(rotated, args.json)
    elif args.command == "project":
        created = asyncio.run(
            _with_services(
                settings,
                lambda s: projects.create_project(
                    s,
                    name=args.name,
                    origins=args.origin,
                    allow_no_origin=args.allow_no_origin,
                    plan=Plan(args.plan),
                ),
            )
        )
        assert isinstance(created, projects.CreatedProject)
        _print_project(created, args.json)
    elif args.command == "endpoint":
        ep = asyncio.run(
            _with_services(
                settings,
                lambda s: projects.create_endpoint(s, project=args.project, name=args.name),
            )
        )
        if args.json:
            print(json.dumps({"id": ep.id, "project_id": ep.project_id, "name": ep.name}))  # type: ignore[attr-defined]
        else:
            print(f"endpoint {ep.name} created")  # type: ignore[attr-defined]
    elif args.command == "serve":
        _serve(args, settings)
    elif args.command == "db":
        copy_to(settings, args.to)
    elif args.command == "outbox":
        notices = asyncio.run(_with_services(settings, list_outbox))
        _print_outbox(notices, args.json)  # type: ignore[arg-type]


async def list_outbox(services: Services) -> list[dict[str, object]]:
    async with services.db.read() as tx:
        rows = await outbox_store.listing(tx)
    return [
        {
            "id": n.id,
            "to": n.to,
            "kind": n.kind,
            "subject": n.subject,
            "body": n.body,
            "created_at": iso_ms(n.created_at),
            "delivered_at": iso_ms(n.delivered_at) if n.delivered_at is not None else None,
            "attempts": n.attempts,
        }
        for n in rows
    ]


def _print_outbox(notices: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(notices, indent=2))
        return
    for n in notices:
        state = f"delivered {n['delivered_at']}" if n["delivered_at"] else "queued"
        print(
            f"#{n['id']} {n['created_at']} to {n['to']} [{n['kind']}] {state}, "
            f"{n['attempts']} attempt(s): {n['subject']}"
        )


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    demo = None
    if args.demo:
        demo = asyncio.run(_with_services(settings, projects.ensure_demo))
    else:
        asyncio.run(_with_services(settings, lambda s: migrate.upgrade(s.db)))
    base = f"http://{args.host}:{args.port}"
    if isinstance(demo, projects.CreatedProject):
        print("Demo project ready:")
        _print_project(demo, as_json=False)
    if settings.graphiql:
        print(f"GraphiQL   {base}/graphql")
    print(f"GraphQL    POST {base}/graphql", flush=True)
    # Workers re-read the settings from the environment; pass the flags along.
    os.environ["AMEND_DEV"] = "true" if settings.dev else "false"
    uvicorn.run(
        "api.asgi:create_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        # SIGTERM: stop accepting, let in-flight requests finish (up to this many seconds).
        timeout_graceful_shutdown=30,
    )


async def _copy(settings: Settings, url: str, bar: Progress | None) -> dict[str, int]:
    source, target = Database(settings.database_url), Database(url)
    task: list[TaskID] = []

    def table(name: str, total: int) -> None:
        if bar is not None:
            task[:] = [bar.add_task(name, total=total)]

    def advance(rows: int) -> None:
        if bar is not None and task:
            bar.advance(task[0], rows)

    try:
        return await store_copy.copy_database(
            source, target, store_copy.Progress(table=table, advance=advance)
        )
    finally:
        await source.dispose()
        await target.dispose()


def copy_to(settings: Settings, url: str) -> None:
    if not url.startswith(("sqlite", "postgresql")):
        sys.exit("amend: --to must be a sqlite+aiosqlite:// or postgresql+asyncpg:// URL")
    if url == settings.database_url:
        sys.exit("amend: --to names the configured database itself")
    bar = None
    if sys.stderr.isatty():
        # (Imported here: every other command starts without it.)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        bar = Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            transient=False,
        )
        bar.start()
    try:
        copied = asyncio.run(_copy(settings, url, bar))
    except store_copy.TargetNotEmpty as error:
        sys.exit(f"amend: {error}")
    finally:
        if bar is not None:
            bar.stop()
    width = max(len(name) for name in copied)
    for name, rows in copied.items():
        print(f"{name:<{width}}  {rows} rows")
    print(f"copied {sum(copied.values())} rows into the target database")
