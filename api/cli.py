"""`amend` command line: serve, migrate, project, endpoint, users, db copy, export-schema,
outbox."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from api import __version__
from api.cli_data import call, copy_to, export_to, import_from
from api.config import ConfigError, Settings
from api.core.clock import iso_ms
from api.core.errors import AmendError
from api.core.models import Plan
from api.core.policy import DEFAULT_ENDPOINT
from api.services import projects
from api.services.container import Services
from api.services.import_plan import CONFLICT_MODES
from api.store import migrate
from api.store import outbox as outbox_store

log = logging.getLogger("amend")


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

    _users_parser(sub)
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


def _users_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser("users", help="import and export users").add_subparsers(
        dest="users_command", required=True
    )
    imp = users.add_parser("import", help="import users from JSON Lines, hashes included")
    imp.add_argument("--project", required=True, help="project id or name")
    imp.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    imp.add_argument("file", help="a JSON Lines file, or - for stdin")
    imp.add_argument("--on-conflict", choices=CONFLICT_MODES, default="skip")
    imp.add_argument("--skip-invalid", action="store_true", help="import the good lines")
    imp.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    imp.add_argument("--json", action="store_true")
    exp = users.add_parser("export", help="write users as JSON Lines, hashes included")
    exp.add_argument("--project", required=True, help="project id or name")
    exp.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    exp.add_argument("--output", help="a file to write (mode 0600); stdout without it")


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
    from api.logs import configure

    # Warnings while reading the configuration are JSON log records too.
    configure("warning")
    try:
        settings = Settings.from_env(dev=dev)
    except ConfigError as error:
        _fail(args, dev, str(error))
    configure(settings.log_level)
    try:
        _run(args, settings)
    except AmendError as error:
        _fail(args, settings.dev, error.message)


def _fail(args: argparse.Namespace, dev: bool, message: str) -> NoReturn:
    # A served process writes JSON lines only (a log pipeline reads them); a command run
    # by hand answers in words.
    if args.command == "serve" and not dev:
        log.error("amend serve cannot start: %s", message)
        sys.exit(1)
    sys.exit(f"amend: {message}")


def _run(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "migrate":
        call(settings, lambda s: migrate.upgrade(s.db))
        print("database is at the newest schema")
    elif args.command == "project":
        if args.project_command == "rotate-keys":
            project = call(settings, lambda s: projects.rotate_keys(s, project=args.project))
        else:
            plan = Plan(args.plan)
            project = call(
                settings,
                lambda s: projects.create_project(
                    s,
                    name=args.name,
                    origins=args.origin,
                    allow_no_origin=args.allow_no_origin,
                    plan=plan,
                ),
            )
        _print_project(project, args.json)
    elif args.command == "endpoint":
        ep = call(
            settings, lambda s: projects.create_endpoint(s, project=args.project, name=args.name)
        )
        if args.json:
            print(json.dumps({"id": ep.id, "project_id": ep.project_id, "name": ep.name}))
        else:
            print(f"endpoint {ep.name} created")
    elif args.command == "serve":
        _serve(args, settings)
    elif args.command == "users" and args.users_command == "import":
        # Stopped by SIGTERM, unwind like Ctrl-C: the temporary spool and key set are removed.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        if not import_from(settings, args):
            sys.exit(1)
    elif args.command == "users":
        export_to(settings, args)
    elif args.command == "db":
        copy_to(settings, args.to)
    elif args.command == "outbox":
        _print_outbox(call(settings, list_outbox), args.json)


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
            "failed_at": iso_ms(n.failed_at) if n.failed_at is not None else None,
        }
        for n in rows
    ]


def _print_outbox(notices: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(notices, indent=2))
        return
    for n in notices:
        state = f"delivered {n['delivered_at']}" if n["delivered_at"] else "queued"
        if n["failed_at"]:
            state = f"failed {n['failed_at']}"
        print(
            f"#{n['id']} {n['created_at']} to {n['to']} [{n['kind']}] {state}, "
            f"{n['attempts']} attempt(s): {n['subject']}"
        )


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    demo = None
    if args.demo:
        demo = call(settings, projects.ensure_demo)
    else:
        call(settings, lambda s: migrate.upgrade(s.db))
    base = f"http://{args.host}:{args.port}"
    if settings.dev:
        if isinstance(demo, projects.CreatedProject):
            print("Demo project ready:")
            _print_project(demo, as_json=False)
        print(f"GraphiQL   {base}/graphql")
        print(f"GraphQL    POST {base}/graphql", flush=True)
    else:
        # Outside --dev every line on stdout and stderr is one JSON object.
        if isinstance(demo, projects.CreatedProject):
            _print_project(demo, as_json=True)
            sys.stdout.flush()
        log.info("listening", extra={"graphql": f"{base}/graphql", "version": __version__})
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
