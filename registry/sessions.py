"""Signed-in sessions held on the server, named by a signed cookie.

Signing in opens a row in ``app_session``; the browser holds a random token naming it, in a
signed, HttpOnly, SameSite=Lax cookie (set by the app server, dashboards/session_routes.py), and
the table holds only the token's SHA-256, so a copy of the table signs no one in. Every run of
the app resumes the session with one query (:func:`resume`), which re-reads the user's role and
status, so a change takes effect at the user's next action. A session ends when:

- the user signs out (this browser, or every browser: :func:`sign_out`);
- an admin disables the user, changes their role or resets their password
  (``registry.auth.end_sessions``, called by those writes);
- it has been idle for ``session_idle_minutes`` or open for ``session_absolute_hours``;
- it is presented by another browser than the one that signed in.

Client binding: a session belongs to the browser that signed in, recognised by the cookie (which
page scripts cannot read) and the User-Agent it sent then (stored hashed). A request with the
cookie but another User-Agent ends the session. The IP address is not used: office proxies and
mobile networks change it during a working day.

The handover: the page that checks the password cannot set an HttpOnly cookie (it talks to the
browser over a websocket), so :func:`open_session` returns a one-time *claim code* instead. The
browser posts it to the app server, which calls :func:`claim` and sets the cookie. The token is
derived from the code with the server's secret (HMAC), so the code alone is useless, it works
once, within :data:`CLAIM_SECONDS`, from the same browser.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from registry import audit
from registry.auth import Principal, end_sessions
from registry.config import get_settings
from registry.db import rowcount
from registry.schema import AppSession, AppUser, utcnow

COOKIE_NAME = "vru_session"
CLAIM_SECONDS = 60
# last_seen_at is written at most this often, so reruns do not each cost a write.
TOUCH_SECONDS = 60
_PROCESS_SECRET = secrets.token_bytes(32)


def _secret() -> bytes:
    configured = get_settings().session_secret
    return configured.encode() if configured else _PROCESS_SECRET


def _mac(purpose: str, value: str) -> str:
    digest = hmac.new(_secret(), f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def client_hash(user_agent: str) -> str:
    return _sha256(f"user-agent:{user_agent}")


@dataclass(frozen=True)
class Opened:
    """A new session: ``claim_code`` goes to the browser once; ``token`` stays on the server."""

    token: str
    claim_code: str


@dataclass(frozen=True)
class Ended:
    """A session that no longer signs anyone in, with the reason to show."""

    message: str


def open_session(session: Session, principal: Principal, *, user_agent: str) -> Opened:
    """Open a session for ``principal`` (just signed in) in the browser sending ``user_agent``."""
    user_id = session.scalar(select(AppUser.id).where(AppUser.username == principal.username))
    if user_id is None:
        raise LookupError(f"No user {principal.username!r} to open a session for.")
    code = secrets.token_urlsafe(32)
    token = _mac("claim", code)
    session.add(AppSession(id=_sha256(token), user_id=user_id, client_hash=client_hash(user_agent)))
    session.flush()
    return Opened(token=token, claim_code=code)


def claim(session: Session, code: str, *, user_agent: str) -> str | None:
    """The session token for a claim code, once, soon after sign-in, in the same browser."""
    token = _mac("claim", code)
    now = utcnow()
    stmt = (
        update(AppSession)
        .where(
            AppSession.id == _sha256(token),
            AppSession.claimed_at.is_(None),
            AppSession.revoked_at.is_(None),
            AppSession.created_at > now - dt.timedelta(seconds=CLAIM_SECONDS),
            AppSession.client_hash == client_hash(user_agent),
        )
        .values(claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    return token if rowcount(session.execute(stmt)) == 1 else None


def cookie_value(token: str) -> str:
    """The cookie's value: the token and its signature."""
    return f"{token}.{_mac('cookie', token)}"


def token_from_cookie(value: str) -> str | None:
    """The token in a cookie value, or ``None`` when the signature does not match."""
    token, _, signature = value.partition(".")
    if token and hmac.compare_digest(signature.encode(), _mac("cookie", token).encode()):
        return token
    return None


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _session_and_user(session: Session, token: str) -> tuple[AppSession, AppUser] | None:
    """The session ``token`` names and its user; ``None`` when there is no such session."""
    return (
        session.execute(
            select(AppSession, AppUser)
            .join(AppUser, AppUser.id == AppSession.user_id)
            .where(AppSession.id == _sha256(token))
        )
        .tuples()
        .one_or_none()
    )


def _end(session: Session, row: AppSession, user: AppUser, why: str, message: str) -> Ended:
    end_sessions(session, user.id, reason=why, only=row.id)
    audit.record(
        session,
        actor=user.username,
        action="sign_out",
        entity="app_user",
        entity_id=user.id,
        detail=f"Session ended: {why}.",
    )
    return Ended(message)


def resume(session: Session, token: str, *, user_agent: str) -> Principal | Ended | None:
    """Who ``token`` signs in now, re-read from the database, or why it no longer does.

    ``None`` when there is no such session (never opened, or a forged token).
    """
    found = _session_and_user(session, token)
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None:
        return Ended(f"Your session has ended ({row.revoked_reason}). Please sign in again.")
    settings = get_settings()
    now = utcnow()
    if not hmac.compare_digest(row.client_hash, client_hash(user_agent)):
        return _end(
            session,
            row,
            user,
            "used from another browser",
            "This sign-in belongs to another browser. Please sign in again.",
        )
    if user.disabled:
        return _end(
            session, row, user, "account disabled", "Your account is disabled. Ask an admin."
        )
    if now - _aware(row.created_at) > dt.timedelta(hours=settings.session_absolute_hours):
        return _end(
            session,
            row,
            user,
            "signed in too long ago",
            f"You signed in more than {settings.session_absolute_hours} hours ago. "
            "Please sign in again.",
        )
    if now - _aware(row.last_seen_at) > dt.timedelta(minutes=settings.session_idle_minutes):
        return _end(
            session,
            row,
            user,
            "idle too long",
            f"You were signed out after {settings.session_idle_minutes} minutes without "
            "activity. Please sign in again.",
        )
    if now - _aware(row.last_seen_at) > dt.timedelta(seconds=TOUCH_SECONDS):
        row.last_seen_at = now
    return Principal(user.username, user.role, user.funder)


def sign_out(session: Session, token: str, *, everywhere: bool = False) -> None:
    """End this session (every tab of this browser), or every session of its user; audited."""
    found = _session_and_user(session, token)
    if found is None:
        return
    row, user = found
    ended = end_sessions(session, user.id, reason="signed out", only=None if everywhere else row.id)
    audit.record(
        session,
        actor=user.username,
        action="sign_out",
        entity="app_user",
        entity_id=user.id,
        detail=f"Signed out everywhere ({ended} sessions)." if everywhere else "Signed out.",
    )
