"""PostgreSQL roles: the tables belong to a migration role; the app's role may only use them.

With ``VRU_MIGRATION_DATABASE_URL`` set (a role that owns the schema and runs ``vru db
upgrade``) and ``VRU_DATABASE_URL`` naming another role (the one the app and ``vru`` run as),
every upgrade grants the app's role what it needs and no more: read and write the registry's
tables, read the schema's revision, and only *insert and read* audit events. The app's role owns
nothing, so it cannot drop or disable the audit triggers, alter a table, or rewrite the trail.
"""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from registry.config import Settings


def _role(url: str) -> str | None:
    return make_url(url).username


def grant_app_role(engine: Engine, settings: Settings) -> str:
    """After an upgrade, grant the app's role its privileges; a sentence for the operator, or ""."""
    if engine.dialect.name != "postgresql" or not settings.migration_database_url:
        return ""
    app, owner = _role(settings.database_url), _role(settings.migration_database_url)
    if not app or app == owner:
        return ""
    quote = engine.dialect.identifier_preparer.quote
    role = quote(app)
    statements = [
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_event FROM {role}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {role}",
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    return (
        f" Granted {app} the use of the tables (audit events: insert and read only); "
        f"they belong to {owner}."
    )
