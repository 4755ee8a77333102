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

Signing in holds against parallel guesses: each attempt is counted as a failure *before* its
password is checked, in one ``UPDATE ... SET failed_logins = failed_logins + 1 ... RETURNING``
that only matches an active, unlocked account, and the count is committed before the (slow)
Argon2 check. So however many guesses arrive at once, at most ``lockout_attempts`` of them are
ever checked before the account locks; a right password resets the count. An unknown username
costs the same Argon2 check (against a dummy hash) and is audited without the text typed, which
is sometimes a password typed in the wrong box.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import ColumnElement, Engine, func, or_, select, update
from sqlalchemy.orm import Session

from registry import audit
from registry.config import get_settings
from registry.db import rowcount, session_scope
from registry.errors import ConflictError, NotFoundError, PermissionDenied, RegistryError
from registry.schema import ROLES, AppSession, AppUser, FundingStream, utcnow

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


ReadScope = tuple[str, str | None]


def read_scope(principal: Principal) -> ReadScope:
    """What the core's read checks look at: the role, and a funder's own funding stream.

    Never the name: so cached read results are shared by everyone who may see the same
    figures (the pages key their caches on this, not on the user; 50 commissioners make one
    cache entry, not 50), and a different role or funder is a different key, checked afresh.
    """
    return principal.role, principal.funder


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


MAX_PASSWORD_LENGTH = 256
# zxcvbn's score: 3 is "safely unguessable" (about 10^8 guesses or more), with its lists of common
# and breached passwords, names, words, keyboard walks, dates, repeats and l33t spellings.
MIN_PASSWORD_SCORE = 3


def check_password_policy(password: str, *, user_inputs: tuple[str, ...] = ()) -> None:
    """Refuse short, padded, very long and guessable passwords, with a plain reason.

    Guessable means zxcvbn (Dropbox's estimator, whose lists include the commonest breached
    passwords) scores it below :data:`MIN_PASSWORD_SCORE`; ``user_inputs`` (the username, the
    email) count as known words, so ``sam-sam-sam-1`` is weak for sam.
    """
    from zxcvbn import zxcvbn  # imported on demand: only setting a password needs its lists

    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"A password can have at most {MAX_PASSWORD_LENGTH} characters.")
    if password.strip() != password:
        raise PasswordPolicyError("A password cannot start or end with a space.")
    # zxcvbn's matching grows quickly with length; a long tail adds strength, never removes it.
    result = zxcvbn(password[:100], user_inputs=[u for u in user_inputs if u])
    if result["score"] < MIN_PASSWORD_SCORE:
        warning = result["feedback"].get("warning") or "This password is too easy to guess."
        advice = " ".join(result["feedback"].get("suggestions") or [])
        raise PasswordPolicyError(
            f"{warning.rstrip('.')}. Choose a longer password of unusual words, for example three "
            f"or four words with something between them. {advice}".strip()
        )


def hash_password(password: str, *, user_inputs: tuple[str, ...] = ()) -> str:
    check_password_policy(password, user_inputs=user_inputs)
    return _HASHER.hash(password)


@functools.cache
def _dummy_hash() -> str:
    """A hash no password matches: an unknown user's attempt is checked against it, so it
    takes as long as a known user's."""
    return _HASHER.hash(secrets.token_urlsafe(32))


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
        password_hash=(
            hash_password(password, user_inputs=(username, email or ""))
            if password is not None
            else None
        ),
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
    if (user.role, user.funder) != (before["role"], before["funder"]):
        end_sessions(session, user.id, reason="role changed")
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
    if disabled:
        end_sessions(session, user.id, reason="account disabled")
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
    user.password_hash = hash_password(password, user_inputs=(user.username, user.email or ""))
    user.failed_logins = 0
    user.locked_until = None
    session.flush()
    end_sessions(session, user.id, reason="password reset")
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


REFUSED = "Wrong username or password, or the account is locked or disabled."
UNKNOWN_USER = "unknown user"  # the audit actor of an unknown username: never the text typed


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _locked(user: AppUser, now: dt.datetime | None = None) -> bool:
    until = _aware(user.locked_until)
    return until is not None and until > (now or utcnow())


def _unlocked(now: dt.datetime) -> ColumnElement[bool]:
    """The SQL condition "active and not locked out at ``now``"."""
    return AppUser.disabled.is_(False) & or_(
        AppUser.locked_until.is_(None), AppUser.locked_until <= now
    )


@dataclass(frozen=True)
class _Attempt:
    """A password attempt already counted against the account, waiting for its check."""

    user_id: int
    username: str
    password_hash: str | None
    number: int  # failures in a row, this attempt included


def _count_attempt(session: Session, username: str, now: dt.datetime) -> _Attempt | None:
    """Count this attempt as a failure before checking it; ``None`` when it may not be checked.

    One atomic ``UPDATE ... RETURNING``: parallel attempts each get their own number, so the
    ``lockout_attempts``-th is known exactly, and attempts past it are refused unchecked.
    Refusals are audited here: an unknown name without the text typed.
    """
    row = session.execute(
        update(AppUser)
        .where(AppUser.username == username, _unlocked(now))
        .values(failed_logins=AppUser.failed_logins + 1)
        .returning(AppUser.id, AppUser.username, AppUser.password_hash, AppUser.failed_logins)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is not None and row.failed_logins <= get_settings().lockout_attempts:
        return _Attempt(row.id, row.username, row.password_hash, row.failed_logins)
    user = session.scalar(select(AppUser).where(AppUser.username == username))
    if user is None:
        actor, entity_id, reason = (
            UNKNOWN_USER,
            None,
            "Unknown username (the name typed is not kept).",
        )
    elif user.disabled:
        actor, entity_id, reason = user.username, user.id, "Account disabled."
    elif row is None:
        actor, entity_id, reason = user.username, user.id, "Account locked after failed attempts."
    else:  # past the limit while earlier attempts are being checked: lock now (also after a
        # crash between counting and checking, which would otherwise leave the count too high)
        actor, entity_id = user.username, user.id
        reason = "Too many attempts at once; refused without checking the password. " + _lock(
            session, user.id, now
        )
    audit.record(
        session,
        actor=actor,
        action="sign_in_failed",
        entity="app_user",
        entity_id=entity_id,
        detail=reason,
    )
    return None


def _lock(session: Session, user_id: int, now: dt.datetime) -> str:
    """Lock the account for ``lockout_minutes`` and start the count again; says so."""
    minutes = get_settings().lockout_minutes
    session.execute(
        update(AppUser)
        .where(AppUser.id == user_id)
        .values(locked_until=now + dt.timedelta(minutes=minutes), failed_logins=0)
        .execution_options(synchronize_session=False)
    )
    return f"Locked for {minutes} minutes."


def _password_failed(session: Session, attempt: _Attempt, now: dt.datetime) -> None:
    detail = f"Wrong password (failure {attempt.number} in a row)."
    if attempt.number >= get_settings().lockout_attempts:
        detail += " " + _lock(session, attempt.user_id, now)
    audit.record(
        session,
        actor=attempt.username,
        action="sign_in_failed",
        entity="app_user",
        entity_id=attempt.user_id,
        detail=detail,
    )


def _password_passed(session: Session, attempt: _Attempt, password: str) -> Principal | None:
    """Reset the count, unless the account was locked or disabled while the check ran."""
    now = utcnow()
    user = session.scalar(
        select(AppUser).where(AppUser.id == attempt.user_id, _unlocked(now)).with_for_update()
    )
    if user is None:
        audit.record(
            session,
            actor=attempt.username,
            action="sign_in_failed",
            entity="app_user",
            entity_id=attempt.user_id,
            detail="Right password, but the account was locked or disabled meanwhile.",
        )
        return None
    if _HASHER.check_needs_rehash(user.password_hash or ""):
        user.password_hash = _HASHER.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(
        session, actor=user.username, action="sign_in", entity="app_user", entity_id=user.id
    )
    return Principal(user.username, user.role, user.funder)


def _password_sign_in(engine: Engine, username: str, password: str) -> Principal:
    with session_scope(engine) as session:  # committed first, so parallel attempts see it
        attempt = _count_attempt(session, username.strip(), utcnow())
    if attempt is None or not attempt.password_hash:
        _verify(_dummy_hash(), password)  # the same time as a real check
        raise SignInError(REFUSED)
    passed = _verify(attempt.password_hash, password)
    with session_scope(engine) as session:
        if passed:
            who = _password_passed(session, attempt, password)
        else:
            _password_failed(session, attempt, utcnow())
            who = None
    if who is None:
        raise SignInError(REFUSED)
    return who


def principal_for_email(session: Session, email: str, *, email_verified: bool) -> Principal:
    """The registry user an OpenID Connect sign-in maps to, by email.

    Only an email the identity provider says it verified (the ``email_verified`` claim) counts:
    otherwise anyone who can register that address at the provider would get the account.
    """
    user = session.scalar(select(AppUser).where(AppUser.email == email.strip().lower()))
    if not email_verified:
        audit.record(
            session,
            actor=user.username if user is not None else email[:100],
            action="sign_in_failed",
            entity="app_user",
            entity_id=user.id if user is not None else None,
            detail="Single sign-on email not verified by the identity provider.",
        )
        raise SignInError(
            f"{email} signed in, but the identity provider has not verified this email address. "
            "Verify it with your provider, then sign in again."
        )
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
    engine: Engine,
    *,
    username: str | None = None,
    password: str = "",
    email: str | None = None,
    email_verified: bool = False,
) -> Principal:
    """Sign in by password, or by a single-sign-on email (``email_verified`` as the identity
    provider said). Refused attempts are committed before :class:`SignInError` is raised, so
    failure counts, lock-outs and their audit events are kept.
    """
    if email is None:
        return _password_sign_in(engine, username or "", password)
    refusal: SignInError | None = None
    with session_scope(engine) as session:
        try:
            return principal_for_email(session, email, email_verified=email_verified)
        except SignInError as exc:
            refusal = exc
    raise refusal


def end_sessions(session: Session, user_id: int, *, reason: str, only: str | None = None) -> int:
    """End ``user_id``'s open sessions (or just the session ``only``): the one place sessions
    are revoked. Each open page finds out at its next action (registry/sessions.py)."""
    stmt = (
        update(AppSession)
        .where(AppSession.user_id == user_id, AppSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason[:64])
        .execution_options(synchronize_session=False)
    )
    if only is not None:
        stmt = stmt.where(AppSession.id == only)
    return rowcount(session.execute(stmt)) or 0


def principal_for(session: Session, username: str) -> Principal:
    """The principal of an existing, active user (for the CLI's ``--as``)."""
    user = get_user(session, username)
    if user.disabled:
        raise PermissionDenied(f"The account {username!r} is disabled.")
    return Principal(user.username, user.role, user.funder)
