"""Users, roles, passwords and the permission check every registry function makes.

Roles:

- ``admin``: everything, including users, imports of outcome data and the audit trail;
- ``staff``: programmes, funding streams and deliveries;
- ``commissioner``: reads everything and runs models, changes nothing;
- ``funder``: reads and downloads summaries of their own funding streams only.

Permissions are enforced here, in the functions the CLI and the pages both call; the pages also
hide what a role may not do, but hiding is not the protection.

Passwords are hashed with Argon2id (argon2-cffi) and never stored, logged or put in an exception.
After ``lockout_attempts`` failures in a row an account is locked for ``lockout_minutes``.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from registry import audit
from registry.config import get_settings
from registry.db import session_scope
from registry.errors import ConflictError, NotFoundError, PermissionDenied, RegistryError
from registry.models import ROLES, AppUser, FundingStream, utcnow

_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
_USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,99}$")


@dataclass(frozen=True)
class Principal:
    """Who is acting: a registry user, or the local operator running the CLI."""

    username: str
    role: str
    funder: str | None = None


def cli_operator() -> Principal:
    """The person running ``vru`` on this machine without ``--as``.

    Whoever can run the CLI against a database can already write that database directly, so the
    CLI acts with admin rights and records the operating-system user in the audit trail.
    """
    return Principal(username=f"cli:{getpass.getuser()}", role="admin")


SYSTEM = Principal(username="system", role="admin")

PERMISSIONS: dict[str, frozenset[str]] = {
    "users.manage": frozenset({"admin"}),
    "audit.read": frozenset({"admin"}),
    "seed.load": frozenset({"admin"}),
    "outcomes.import": frozenset({"admin"}),
    "measures.manage": frozenset({"admin"}),
    "population.import": frozenset({"admin"}),
    "months.sign_off": frozenset({"admin"}),
    "funding_streams.write": frozenset({"admin", "staff"}),
    "programmes.write": frozenset({"admin", "staff"}),
    "deliveries.write": frozenset({"admin", "staff"}),
    "deliveries.read": frozenset({"admin", "staff", "commissioner"}),
    "outcomes.read": frozenset({"admin", "staff", "commissioner"}),
    "models.run": frozenset({"admin", "staff", "commissioner"}),
    "reports.read": frozenset({"admin", "staff", "commissioner", "funder"}),
}


def allowed(principal: Principal, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"Unknown permission {permission!r}.")
    return principal.role in PERMISSIONS[permission]


def require(principal: Principal, permission: str) -> None:
    """Raise :class:`PermissionDenied` unless ``principal``'s role grants ``permission``."""
    if not allowed(principal, permission):
        raise PermissionDenied(
            f"{principal.username} ({principal.role}) may not do this ({permission})."
        )


P = ParamSpec("P")
R = TypeVar("R")

# Every function that changes the registry, by dotted name, with the permission it needs. The
# role x action matrix test walks this table, and an AST check fails any public function in
# registry/ that writes without being registered here.
WRITE_FUNCTIONS: dict[str, tuple[Callable[..., object], str]] = {}


def write_action(
    permission: str,
) -> Callable[[Callable[Concatenate[Session, P], R]], Callable[Concatenate[Session, P], R]]:
    """Declare a registry write: check ``principal`` has ``permission`` before anything runs.

    The decorated function must take the session first and ``principal`` as a keyword.
    """
    if permission not in PERMISSIONS:
        raise KeyError(f"Unknown permission {permission!r}.")

    def decorate(fn: Callable[Concatenate[Session, P], R]) -> Callable[Concatenate[Session, P], R]:
        @functools.wraps(fn)
        def checked(session: Session, /, *args: P.args, **kwargs: P.kwargs) -> R:
            who = kwargs.get("principal")
            if not isinstance(who, Principal):
                raise PermissionDenied(f"{fn.__name__} needs principal=<who is acting>.")
            require(who, permission)
            return fn(session, *args, **kwargs)

        WRITE_FUNCTIONS[f"{fn.__module__}.{fn.__qualname__}"] = (checked, permission)
        return checked

    return decorate


def visible_funding_stream_ids(session: Session, principal: Principal) -> list[int] | None:
    """The funding streams whose summaries ``principal`` may see; ``None`` means all of them."""
    require(principal, "reports.read")
    if principal.role != "funder":
        return None
    if not principal.funder:
        return []
    stmt = select(FundingStream.id).where(FundingStream.funder == principal.funder)
    return list(session.scalars(stmt))


# --- passwords -------------------------------------------------------------------------------


class PasswordPolicyError(RegistryError):
    pass


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if password.strip() != password:
        raise PasswordPolicyError("A password cannot start or end with a space.")


def hash_password(password: str) -> str:
    check_password_policy(password)
    return _HASHER.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# --- users -----------------------------------------------------------------------------------


def _user_snapshot(user: AppUser) -> dict[str, object]:
    """A user as the audit trail records it: never the password hash."""
    return {
        "username": user.username,
        "email": user.email,
        "role": user.role,
        "funder": user.funder,
        "disabled": user.disabled,
    }


def _check_role(session: Session, role: str, funder: str | None) -> None:
    if role not in ROLES:
        raise RegistryError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    if role != "funder":
        return
    if not funder:
        raise RegistryError("A funder account needs --funder: the funder whose streams it sees.")
    # A funder sees the streams whose funder is spelt exactly so; a name no stream has would see
    # nothing. Before any stream exists, funder accounts may still be set up first.
    funders = sorted(set(session.scalars(select(FundingStream.funder))))
    if funders and funder not in funders:
        raise RegistryError(
            f"No funding stream is paid for by {funder!r}; the funders are "
            f"{', '.join(repr(f) for f in funders)}."
        )


def get_user(session: Session, username: str) -> AppUser:
    user = session.scalar(select(AppUser).where(AppUser.username == username))
    if user is None:
        raise NotFoundError(f"There is no user called {username!r}.")
    return user


@write_action("users.manage")
def add_user(
    session: Session,
    *,
    principal: Principal,
    username: str,
    role: str,
    password: str | None = None,
    email: str | None = None,
    funder: str | None = None,
) -> AppUser:
    """Create a user. A password is needed unless the user signs in through OpenID Connect."""
    username = username.strip()
    if not _USERNAME_RE.match(username):
        raise RegistryError(
            f"{username!r} is not a valid username: use 2-100 letters, digits, "
            "'.', '_', '-' or '@'."
        )
    _check_role(session, role, funder)
    if session.scalar(select(AppUser.id).where(AppUser.username == username)) is not None:
        raise ConflictError(f"A user called {username!r} already exists.")
    if email:
        email = email.strip().lower()
        if session.scalar(select(AppUser.id).where(AppUser.email == email)) is not None:
            raise ConflictError(f"Another user already has the email {email!r}.")
    if password is None and not email:
        raise RegistryError("Give the user a password, or an email for single sign-on.")
    user = AppUser(
        username=username,
        role=role,
        email=email or None,
        funder=funder if role == "funder" else None,
        password_hash=hash_password(password) if password is not None else None,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="create",
        entity="app_user",
        entity_id=user.id,
        after=_user_snapshot(user),
    )
    return user


@write_action("users.manage")
def set_role(
    session: Session, *, principal: Principal, username: str, role: str, funder: str | None = None
) -> AppUser:
    user = get_user(session, username)
    _check_role(session, role, funder or user.funder)
    before = _user_snapshot(user)
    if user.role == "admin" and role != "admin":
        _ensure_other_admin(session, user)
    user.role = role
    user.funder = (funder or user.funder) if role == "funder" else None
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="role_change",
        entity="app_user",
        entity_id=user.id,
        before=before,
        after=_user_snapshot(user),
    )
    return user


def _ensure_other_admin(session: Session, user: AppUser) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(AppUser)
        .where(AppUser.role == "admin", AppUser.disabled.is_(False), AppUser.id != user.id)
    )
    if not others:
        raise ConflictError(f"{user.username} is the last active admin; add another admin first.")


@write_action("users.manage")
def set_disabled(
    session: Session, *, principal: Principal, username: str, disabled: bool = True
) -> AppUser:
    user = get_user(session, username)
    if disabled and user.role == "admin":
        _ensure_other_admin(session, user)
    before = _user_snapshot(user)
    user.disabled = disabled
    if not disabled:
        user.failed_logins = 0
        user.locked_until = None
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="disable" if disabled else "enable",
        entity="app_user",
        entity_id=user.id,
        before=before,
        after=_user_snapshot(user),
    )
    return user


@write_action("users.manage")
def reset_password(
    session: Session, *, principal: Principal, username: str, password: str
) -> AppUser:
    """Set a new password and lift any lock-out. The audit event says so, without the password."""
    user = get_user(session, username)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="password_reset",
        entity="app_user",
        entity_id=user.id,
        detail="Password reset; lock-out cleared.",
    )
    return user


def list_users(session: Session, *, principal: Principal) -> list[dict[str, object]]:
    require(principal, "users.manage")
    users = session.scalars(select(AppUser).order_by(AppUser.username))
    return [
        _user_snapshot(u)
        | {"locked": _locked(u), "last_login_at": u.last_login_at, "sso": u.password_hash is None}
        for u in users
    ]


# --- signing in ------------------------------------------------------------------------------


class SignInError(RegistryError):
    """Sign-in refused. The message never says whether the username exists."""


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _locked(user: AppUser, now: dt.datetime | None = None) -> bool:
    until = _aware(user.locked_until)
    return until is not None and until > (now or utcnow())


def authenticate(session: Session, *, username: str, password: str) -> Principal:
    """Check a username and password; count failures and lock the account after too many.

    The caller must commit the session whatever the outcome, so failures are remembered.
    """
    settings = get_settings()
    refused = SignInError("Wrong username or password, or the account is locked or disabled.")
    user = session.scalar(select(AppUser).where(AppUser.username == username.strip()))
    if user is None:
        audit.record(
            session,
            actor=username.strip()[:100] or "(blank)",
            action="sign_in_failed",
            entity="app_user",
            detail="Unknown username.",
        )
        raise refused
    now = utcnow()
    if user.disabled or _locked(user, now):
        reason = "Account disabled." if user.disabled else "Account locked after failed attempts."
        audit.record(
            session,
            actor=user.username,
            action="sign_in_failed",
            entity="app_user",
            entity_id=user.id,
            detail=reason,
        )
        raise refused
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        detail = f"Wrong password (failure {user.failed_logins} in a row)."
        if user.failed_logins >= settings.lockout_attempts:
            user.locked_until = now + dt.timedelta(minutes=settings.lockout_minutes)
            user.failed_logins = 0
            detail += f" Locked for {settings.lockout_minutes} minutes."
        audit.record(
            session,
            actor=user.username,
            action="sign_in_failed",
            entity="app_user",
            entity_id=user.id,
            detail=detail,
        )
        raise refused
    if _HASHER.check_needs_rehash(user.password_hash or ""):
        user.password_hash = _HASHER.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(
        session, actor=user.username, action="sign_in", entity="app_user", entity_id=user.id
    )
    return Principal(user.username, user.role, user.funder)


def principal_for_email(session: Session, email: str) -> Principal:
    """The registry user an OpenID Connect sign-in maps to, by email."""
    user = session.scalar(select(AppUser).where(AppUser.email == email.strip().lower()))
    if user is None or user.disabled:
        audit.record(
            session,
            actor=email[:100],
            action="sign_in_failed",
            entity="app_user",
            detail="Single sign-on email has no active registry account.",
        )
        raise SignInError(
            f"{email} signed in, but has no active account in the registry. Ask an admin to add "
            "you with `vru users add NAME --role ROLE --email EMAIL`."
        )
    user.last_login_at = utcnow()
    audit.record(
        session,
        actor=user.username,
        action="sign_in",
        entity="app_user",
        entity_id=user.id,
        detail="Single sign-on.",
    )
    return Principal(user.username, user.role, user.funder)


def sign_in(
    engine: Engine, *, username: str | None = None, password: str = "", email: str | None = None
) -> Principal:
    """Sign in by password (or by a single-sign-on email) in a transaction of its own.

    A refused attempt is committed before :class:`SignInError` is raised, so failure counts,
    lock-outs and their audit events are kept.
    """
    refusal: SignInError | None = None
    with session_scope(engine) as session:
        try:
            if email is not None:
                return principal_for_email(session, email)
            return authenticate(session, username=username or "", password=password)
        except SignInError as exc:
            refusal = exc
    raise refusal


def principal_for(session: Session, username: str) -> Principal:
    """The principal of an existing, active user (for the CLI's ``--as``)."""
    user = get_user(session, username)
    if user.disabled:
        raise PermissionDenied(f"The account {username!r} is disabled.")
    return Principal(user.username, user.role, user.funder)
