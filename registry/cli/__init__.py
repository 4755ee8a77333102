"""The ``vru`` command line. Each command parses its arguments and calls one registry function.

Exit codes: 0 success, 1 the input or the database state was refused (one line on stderr, no
traceback), 2 a usage error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from alembic.util.exc import CommandError
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from registry import audit, auth, backup, db, demo, numbers, roles
from registry.bundled import bundled
from registry.cli.params import ROLE, json_option
from registry.config import ConfigError, get_settings
from registry.errors import RegistryError, database_error_message

# The app with its session-cookie routes (vru_server.py serves streamlit_app.py).
APP_FILE = bundled("vru_server.py")


class Context:
    """What every command needs: the database URL and who is acting."""

    def __init__(self, database_url: str | None, acting_as: str | None) -> None:
        self.database_url = database_url
        self.acting_as = acting_as
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = db.make_engine(self.database_url)
        return self._engine

    def require_migrated(self) -> None:
        if not db.has_schema(self.engine) or not db.is_up_to_date(self.engine):
            raise RegistryError(
                f"The database {self.engine.url.render_as_string(hide_password=True)} is not "
                "migrated to the newest schema; run `vru db upgrade` first."
            )

    @contextmanager
    def session(self) -> Iterator[tuple[Session, auth.Principal]]:
        """A transaction and the principal acting in it (``--as USER`` or the CLI operator)."""
        self.require_migrated()
        with db.session_scope(self.engine) as session:
            principal = (
                auth.principal_for(session, self.acting_as)
                if self.acting_as
                else auth.cli_operator()
            )
            yield session, principal


def echo_table(rows: list[dict[Any, Any]], columns: dict[str, str], *, empty: str) -> None:
    """Print ``rows`` as a text table under a header line: ``columns`` maps each row key to its
    heading. Figures are written the one way (:mod:`registry.numbers`) and right-aligned; a
    missing value is a dash. Prints ``empty`` when there are no rows."""
    if not rows:
        click.echo(empty)
        return
    kinds = {key: numbers.column_kind(key, [r.get(key) for r in rows]) for key in columns}
    cells = [
        [
            numbers.MISSING
            if numbers.missing(r.get(key))
            else str(r[key])
            if (kind := kinds[key]) is None
            else numbers.FORMATTERS[kind](r[key])
            for key in columns
        ]
        for r in rows
    ]
    widths = [
        max(len(heading), *(len(row[i]) for row in cells))
        for i, heading in enumerate(columns.values())
    ]
    right = [kinds[key] is not None for key in columns]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ).rstrip()

    click.echo(line(list(columns.values())))
    click.echo(line(["-" * w for w in widths]))
    for row in cells:
        click.echo(line(row))


def echo_rows(
    rows: list[dict[str, Any]],
    columns: dict[str, str],
    *,
    as_json: bool,
    empty: str,
    shown: list[dict[str, Any]] | None = None,
) -> None:
    """A listing command's output: ``rows`` as JSON with ``--json``, else the table of
    :func:`echo_table` (of ``shown``, the rows with columns made for reading, when given)."""
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    echo_table(rows if shown is None else shown, columns, empty=empty)


def fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(1)


class VruGroup(click.Group):
    """Turns every refusal into one line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except (RegistryError, ConfigError) as exc:
            fail(str(exc))
        except DBAPIError as exc:
            fail(database_error_message(exc))
        except SQLAlchemyError as exc:
            fail(f"Database error: {str(exc).splitlines()[0]}")
        except BrokenPipeError:
            # The reader went away (``vru ... | head``): stop quietly, no message to nobody.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(1) from None
        except CommandError as exc:
            fail(f"Migration refused: {exc}")
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        except Exception as exc:
            fail(f"Unexpected error ({type(exc).__name__}): {exc}")


pass_ctx = click.make_pass_decorator(Context)


def shared_group(name: str, help_text: str) -> click.Group:
    """The top-level group ``name`` (``import``, ``export``) that several modules extend."""
    existing = cli.commands.get(name)
    if isinstance(existing, click.Group):
        return existing

    @cli.group(name, help=help_text)
    def group() -> None:
        pass

    return group


@click.group(cls=VruGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    envvar="VRU_DATABASE_URL",
    metavar="URL",
    help="Database to use (default: $VRU_DATABASE_URL, else sqlite file vru.db here).",
)
@click.option(
    "--as",
    "acting_as",
    envvar="VRU_USER",
    metavar="USER",
    help="Act as this registry user, with their role (default: the local operator).",
)
@click.version_option(package_name="vru-registry")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, acting_as: str | None) -> None:
    """Registry of violence-reduction programmes, their delivery and crime outcomes."""
    ctx.obj = Context(database_url, acting_as)


# --- db ----------------------------------------------------------------------------------------


@cli.group("db")
@pass_ctx
def db_group(obj: Context) -> None:
    """Create and migrate the database schema (the local operator only; audited)."""
    if obj.acting_as:
        raise RegistryError(
            "`vru db` commands are for the operator of this machine, not for registry users: "
            "run them without --as (and without VRU_USER)."
        )


def _migration_engine(obj: Context) -> Engine:
    """The engine migrations run on: ``VRU_MIGRATION_DATABASE_URL`` (the role that owns the
    tables) when set, else the app's database URL (see README, "Database roles")."""
    url = get_settings(obj.database_url).migration_database_url
    return db.make_engine(url) if url else obj.engine


def _record(revision: str) -> Callable[[Any, str | None, str | None], None]:
    operator = auth.cli_operator().username

    def hook(connection: Any, start: str | None, end: str | None) -> None:
        audit.record_migration(connection, actor=operator, start=start, end=end, target=revision)

    return hook


@db_group.command("upgrade")
@click.argument("revision", default="head")
@pass_ctx
def db_upgrade(obj: Context, revision: str) -> None:
    """Migrate the database to REVISION (default: the newest)."""
    engine = _migration_engine(obj)
    db.upgrade(engine, revision, after=_record(revision))
    granted = roles.grant_app_role(engine, get_settings(obj.database_url))
    click.echo(f"Database at revision {db.current_revision(engine)}." + granted)


@db_group.command("downgrade")
@click.argument("revision")
@pass_ctx
def db_downgrade(obj: Context, revision: str) -> None:
    """Migrate the database down to REVISION ('base' removes every table)."""
    engine = _migration_engine(obj)
    db.downgrade(engine, revision, before=_record(revision))
    click.echo(f"Database at revision {db.current_revision(engine) or 'base'}.")


@db_group.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def db_backup(obj: Context, file: Path) -> None:
    """Write the whole database to FILE (PostgreSQL: pg_dump custom format; SQLite: a copy)."""
    engine = _migration_engine(obj)
    if backup.table_names(engine):
        with engine.begin() as connection:  # committed first, so the backup holds its own event
            audit.record_operator_event(
                connection,
                actor=auth.cli_operator().username,
                action="backup",
                detail=f"vru db backup to {file.name}",
            )
    backup.backup(engine, file)
    click.echo(f"Backed up {engine.url.render_as_string(hide_password=True)} to {file}.")


@db_group.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the tables the database already holds.")
@pass_ctx
def db_restore(obj: Context, file: Path, force: bool) -> None:
    """Load the backup FILE into the database; refused when it is not empty, unless --force."""
    engine = _migration_engine(obj)
    backup.restore(engine, file, force=force)
    revision = db.current_revision(engine)
    with engine.begin() as connection:
        audit.record_operator_event(
            connection,
            actor=auth.cli_operator().username,
            action="restore",
            detail=f"vru db restore from {file.name}" + (" (--force)" if force else ""),
            after={"revision": revision},
        )
    granted = roles.grant_app_role(engine, get_settings(obj.database_url))
    behind = "" if revision == db.head_revision() else " Run `vru db upgrade` before serving it."
    click.echo(f"Restored {file} (schema revision {revision}).{behind}{granted}")


@db_group.command("current")
@pass_ctx
def db_current(obj: Context) -> None:
    """Print the database's revision and whether it is the newest."""
    current = db.current_revision(obj.engine)
    head = db.head_revision()
    state = "up to date" if current == head else f"behind (newest is {head})"
    click.echo(f"{current or 'base'} ({state})")


# --- seed and serve ----------------------------------------------------------------------------


@cli.command("seed")
@click.option("--force", is_flag=True, help="Replace existing registry data with the demo data.")
@click.option("--if-empty", is_flag=True, help="Do nothing (exit 0) when data is already there.")
@click.option(
    "--with-demo-users",
    is_flag=True,
    help="Also create one demo account per role (see the README) when missing.",
)
@pass_ctx
def seed(obj: Context, force: bool, if_empty: bool, with_demo_users: bool) -> None:
    """Load the synthetic demo data (invented figures, labelled as such everywhere)."""
    with obj.session() as (session, principal):
        if if_empty and not force and demo.has_registry_data(session):
            click.echo("The registry already holds data; demo data not loaded.")
            return
        counts = demo.load(session, principal=principal, force=force)
        users = demo.add_demo_users(session, principal=principal) if with_demo_users else []
    click.echo("Loaded synthetic demo data: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    if users:
        click.echo("Demo accounts (password: <name>-demo-password): " + ", ".join(users))


def streamlit_options() -> dict[str, Any]:
    """The app's Streamlit settings (``.streamlit/config.toml``) as ``section.key`` -> value.

    Streamlit reads that file only from the current directory, so ``vru serve`` passes them as
    flags: the app then behaves the same (no traceback shown, upload limit) wherever it starts.
    """
    with bundled("streamlit_config.toml").open("rb") as handle:
        config = tomllib.load(handle)
    return {f"{section}.{key}": v for section, keys in config.items() for key, v in keys.items()}


@cli.command("serve")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--address",
    metavar="HOST",
    help="Interface to listen on [default: VRU_SERVER_ADDRESS, else 127.0.0.1, this machine "
    "only]; 0.0.0.0 listens on every interface.",
)
@click.option("--headless/--no-headless", default=True, show_default=True)
@pass_ctx
def serve(obj: Context, port: int, address: str | None, headless: bool) -> None:
    """Start the Streamlit app on http://ADDRESS:PORT (this machine only by default)."""
    obj.require_migrated()
    settings = get_settings(obj.database_url)
    env = dict(os.environ, VRU_DATABASE_URL=settings.database_url)
    options = streamlit_options() | {
        "server.address": address or settings.server_address,
        "server.port": port,
        "server.headless": headless,
        "server.maxUploadSize": settings.max_upload_megabytes,
    }
    flags = [
        f"--{name}={str(v).lower() if isinstance(v, bool) else v}" for name, v in options.items()
    ]
    command = [sys.executable, "-m", "streamlit", "run", str(APP_FILE), *flags]
    raise SystemExit(subprocess.call(command, env=env))


# --- users -------------------------------------------------------------------------------------


@cli.group("users")
def users_group() -> None:
    """Manage who may sign in and what their role allows."""


def _password_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--password", metavar="P", help="The password (prompted for, hidden, when omitted)."
    )(fn)


def _ask_password(password: str | None, sso: bool = False) -> str | None:
    if password is not None or sso:
        return password
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_group.command("add")
@click.argument("username")
@click.option("--role", required=True, type=ROLE)
@_password_option
@click.option("--email", help="Email for OpenID Connect sign-in; no password is then needed.")
@click.option("--funder", help="For funder accounts: the funder whose streams they see.")
@pass_ctx
def users_add(
    obj: Context,
    username: str,
    role: str,
    password: str | None,
    email: str | None,
    funder: str | None,
) -> None:
    """Add a user. The first admin can be added by anyone who can run this command."""
    password = _ask_password(password, sso=bool(email))
    with obj.session() as (session, principal):
        auth.add_user(
            session,
            principal=principal,
            username=username,
            role=role,
            password=password,
            email=email,
            funder=funder,
        )
    click.echo(f"Added {username} ({role}).")


@users_group.command("set-role")
@click.argument("username")
@click.argument("role", type=ROLE)
@click.option("--funder", help="For funder accounts: the funder whose streams they see.")
@pass_ctx
def users_set_role(obj: Context, username: str, role: str, funder: str | None) -> None:
    """Change a user's role."""
    with obj.session() as (session, principal):
        auth.set_role(session, principal=principal, username=username, role=role, funder=funder)
    click.echo(f"{username} is now {role}.")


@users_group.command("disable")
@click.argument("username")
@pass_ctx
def users_disable(obj: Context, username: str) -> None:
    """Stop a user signing in (their history stays in the audit trail)."""
    with obj.session() as (session, principal):
        auth.set_disabled(session, principal=principal, username=username, disabled=True)
    click.echo(f"{username} is disabled.")


@users_group.command("enable")
@click.argument("username")
@pass_ctx
def users_enable(obj: Context, username: str) -> None:
    """Let a disabled user sign in again."""
    with obj.session() as (session, principal):
        auth.set_disabled(session, principal=principal, username=username, disabled=False)
    click.echo(f"{username} is enabled.")


@users_group.command("reset-password")
@click.argument("username")
@_password_option
@pass_ctx
def users_reset_password(obj: Context, username: str, password: str | None) -> None:
    """Set a new password for a user and lift any lock-out."""
    new_password = _ask_password(password) or ""
    with obj.session() as (session, principal):
        auth.reset_password(session, principal=principal, username=username, password=new_password)
    click.echo(f"Password for {username} reset.")


@users_group.command("list")
@json_option()
@pass_ctx
def users_list(obj: Context, as_json: bool) -> None:
    """List users, their roles and whether they are disabled or locked."""
    with obj.session() as (session, principal):
        users = auth.list_users(session, principal=principal)
    echo_rows(
        users,
        {"username": "User", "role": "Role", "funder": "Funder", "state": "State"},
        as_json=as_json,
        empty="No users to list.",
        shown=[
            u
            | {
                "state": " ".join(
                    f
                    for f, on in (
                        ("disabled", u["disabled"]),
                        ("locked", u["locked"]),
                        ("sso", u["sso"]),
                    )
                    if on
                )
            }
            for u in users
        ],
    )


# --- audit -------------------------------------------------------------------------------------


@cli.group("audit", invoke_without_command=True)
@click.option("--actor", help="Only events by this user.")
@click.option("--action", type=click.Choice(audit.ACTIONS), help="Only this kind of event.")
@click.option("--entity", help="Only events about this entity (delivery, programme, app_user...).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="From this date (YYYY-MM-DD).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Before this date.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, None))
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the events as CSV to this file instead of printing them.",
)
@click.pass_context
def audit_cmd(
    ctx: click.Context,
    actor: str | None,
    action: str | None,
    entity: str | None,
    since: Any,
    until: Any,
    limit: int,
    csv_path: Path | None,
) -> None:
    """List the audit trail, newest first (admins only); `vru audit verify` checks its chain."""
    import datetime as dt

    if ctx.invoked_subcommand is not None:
        return
    obj: Context = ctx.obj

    flt = audit.AuditFilter(
        actor=actor,
        action=action,
        entity=entity,
        since=since.replace(tzinfo=dt.UTC) if since else None,
        until=until.replace(tzinfo=dt.UTC) if until else None,
        limit=None if csv_path else limit,
    )
    with obj.session() as (session, principal):
        rows = audit.list_events(session, principal=principal, flt=flt)
    if csv_path:
        csv_path.write_text(audit.events_csv(rows), encoding="utf-8")
        click.echo(f"Wrote {len(rows)} audit events to {csv_path}.")
        return
    echo_table(
        rows,
        {
            "id": "Id",
            "occurred_at": "When (UTC)",
            "actor": "Who",
            "action": "Action",
            "about": "About",
            "change": "Change",
            "detail": "Detail",
        },
        empty="No audit events match.",
    )


@audit_cmd.command("verify")
@click.option(
    "--head",
    metavar="ID:HASH",
    help="An event id and hash printed by an earlier verify: check it is still in the trail.",
)
@pass_ctx
def audit_verify(obj: Context, head: str | None) -> None:
    """Check the audit trail's hash chain: no event edited, removed or replaced (admins only)."""
    expected = None
    if head:
        number, _, digest = head.partition(":")
        if not number.isdigit() or len(digest) != 64:
            raise click.UsageError("--head takes ID:HASH, as printed by `vru audit verify`.")
        expected = (int(number), digest)
    with obj.session() as (session, principal):
        report = audit.verify_chain(session, principal=principal, head=expected)
    if not report.ok:
        for problem in report.problems:
            click.echo(f"Error: {problem}", err=True)
        raise SystemExit(1)
    if report.head_id is None:
        click.echo("The audit trail is empty.")
        return
    click.echo(
        f"The audit trail is whole: {report.events:,} events, each linked to the one before. "
        f"Head: {report.head_id}:{report.head_hash}. Keep this line somewhere the database "
        "cannot reach; `vru audit verify --head` with it later shows nothing up to it was "
        "rewritten."
    )


def main() -> None:
    cli(prog_name="vru")


from registry.cli import (  # noqa: E402,F401  (registers commands)
    analysis,
    entry,
    outcomes,
    reports,
)
