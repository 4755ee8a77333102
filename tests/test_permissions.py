"""Role x action matrix: every registry write is gated, and each role is allowed or refused as
specified. A new write function that is not declared with ``@write_action`` fails here."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import registry
from registry import auth
from registry.errors import PermissionDenied
from tests.conftest import PRINCIPALS

ADMIN_ONLY = {"admin"}
STAFF_UP = {"admin", "staff"}

# The specification: which roles may call each write function. Keep in step with README.
EXPECTED: dict[str, set[str]] = {
    "registry.auth.add_user": ADMIN_ONLY,
    "registry.auth.set_role": ADMIN_ONLY,
    "registry.auth.set_disabled": ADMIN_ONLY,
    "registry.auth.reset_password": ADMIN_ONLY,
    "registry.demo.load": ADMIN_ONLY,
    "registry.demo.add_demo_users": ADMIN_ONLY,
    "registry.outcomes.measures.add_measure": ADMIN_ONLY,
    "registry.outcomes.measures.add_break": ADMIN_ONLY,
    "registry.outcomes.measures.set_population_band": ADMIN_ONLY,
    "registry.outcomes.mapping.set_mapping": ADMIN_ONLY,
    "registry.outcomes.sources.set_source_order": ADMIN_ONLY,
    "registry.outcomes.store.import_crime": ADMIN_ONLY,
    "registry.outcomes.store.import_population": ADMIN_ONLY,
    "registry.programmes.add_funding_stream": STAFF_UP,
    "registry.programmes.add_programme": STAFF_UP,
    "registry.programmes.edit_programme": STAFF_UP,
    "registry.programmes.close_programme": STAFF_UP,
    "registry.deliveries.write.commit": STAFF_UP,
    "registry.deliveries.write.import_file": STAFF_UP,
    "registry.deliveries.entry.save_delivery": STAFF_UP,
    "registry.deliveries.entry.save_grid": STAFF_UP,
    "registry.deliveries.entry.delete_delivery": STAFF_UP,
    "registry.deliveries.returns.sign_off_month": ADMIN_ONLY,
    "registry.deliveries.returns.reopen_month": ADMIN_ONLY,
}

# Writers that are not actions of a signed-in user: the audit mechanism itself (called inside
# every gated write) and sign-in, which records failures before anyone is signed in.
UNGATED = {
    "registry.audit.record",
    "registry.audit.record_many",  # the audit trail itself, inside gated writes
    "registry.audit.record_migration",  # `vru db`, the local operator only (never --as)
    "registry.audit.record_operator_event",  # `vru db` too
    "registry.auth.principal_for_email",
    "registry.auth.sign_in",
    "registry.auth.end_sessions",  # revoking: inside gated user writes, and signing out
    "registry.sessions.open_session",  # a session of one's own, right after signing in
    "registry.sessions.claim",
    "registry.sessions.resume",
    "registry.sessions.sign_out",
}
WRITE_MARKERS = {"add", "add_all", "delete", "merge", "record", "bulk_insert_mappings"}
WRITE_CALLS = {"insert", "update", "delete"}
WRITERS = {"session", "s", "audit", "conn", "connection"}  # receivers of session.add(...) etc.


def _modules() -> list[str]:
    root = Path(registry.__file__).parent
    return sorted(
        m.name
        for m in pkgutil.walk_packages([str(root)], prefix="registry.")
        if not m.name.startswith("registry.cli")
    )


def _writes_directly(node: ast.FunctionDef) -> bool:
    # Changing an ORM object's attribute only writes when a session will flush it, so attribute
    # assignments count in functions that are handed a session.
    has_session = any(a.arg == "session" for a in [*node.args.args, *node.args.kwonlyargs])
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr in WRITE_MARKERS
                and isinstance(func.value, ast.Name)
                and func.value.id in WRITERS
            ):
                return True
            if isinstance(func, ast.Name) and func.id in WRITE_CALLS:
                return True
        if has_session and isinstance(sub, ast.Assign | ast.AugAssign):
            targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
            # Assigning to an ORM object's attribute (user.role = ...) changes a row.
            if any(
                isinstance(t, ast.Attribute)
                and isinstance(t.value, ast.Name)
                and t.value.id not in {"self", "cls"}
                for t in targets
            ):
                return True
    return False


def _writers(module_name: str) -> set[str]:
    """Module-level functions that write, directly or through a function of the same module."""
    module = importlib.import_module(module_name)
    tree = ast.parse(inspect.getsource(module))
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    calls = {
        name: {
            c.func.id
            for c in ast.walk(node)
            if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in functions
        }
        for name, node in functions.items()
    }
    writing = {name for name, node in functions.items() if _writes_directly(node)}
    changed = True
    while changed:
        new = {name for name, called in calls.items() if called & writing} - writing
        writing |= new
        changed = bool(new)
    return {f"{module_name}.{name}" for name in writing if not name.startswith("_")}


def test_every_public_writer_is_declared() -> None:
    writers = set().union(*(_writers(m) for m in _modules())) - UNGATED
    undeclared = sorted(writers - set(auth.WRITE_FUNCTIONS))
    assert undeclared == [], f"Write functions without @write_action: {undeclared}"


def test_matrix_covers_every_declared_write() -> None:
    for module in _modules():
        importlib.import_module(module)
    assert set(auth.WRITE_FUNCTIONS) == set(EXPECTED), (
        "Add new write functions to EXPECTED with the roles the issue specifies."
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("role", sorted(PRINCIPALS))
def test_role_is_allowed_or_refused(name: str, role: str, session) -> None:
    for module in _modules():
        importlib.import_module(module)
    fn, _permission = auth.WRITE_FUNCTIONS[name]
    principal = PRINCIPALS[role]
    try:
        # No other arguments: an allowed role gets past the gate and then fails on them.
        fn(session, principal=principal)
    except PermissionDenied:
        refused = True
    except Exception:  # anything after the gate means the gate let it through
        refused = False
    else:
        refused = False
    session.rollback()
    assert refused == (role not in EXPECTED[name]), f"{role} on {name}"


def test_a_missing_principal_is_refused(session) -> None:
    fn, _ = auth.WRITE_FUNCTIONS["registry.auth.add_user"]
    with pytest.raises(PermissionDenied):
        fn(session, username="x", role="admin", password="long-enough-pw")
