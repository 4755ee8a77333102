"""Server-side sessions (registry/sessions.py): the claim, the cookie, resuming and ending."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from registry import auth, db, sessions
from registry.schema import AppSession, AuditEvent
from tests.conftest import ADMIN

CHROME = "Mozilla/5.0 (X11; Linux x86_64) Chrome/140"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Firefox/140.0"
SAM = auth.Principal("sam", "staff")


@pytest.fixture
def users(engine):
    with db.session_scope(engine) as s:
        auth.add_user(s, principal=ADMIN, username="alice", role="admin", password="kettle-orbit-1")
        auth.add_user(s, principal=ADMIN, username="sam", role="staff", password="kettle-orbit-2")
    return engine


def _open(engine, agent: str = CHROME) -> sessions.Opened:
    with db.session_scope(engine) as s:
        return sessions.open_session(s, SAM, user_agent=agent)


def _resume(engine, token: str, agent: str = CHROME):
    with db.session_scope(engine) as s:
        return sessions.resume(s, token, user_agent=agent)


def test_only_the_token_hash_is_stored(users) -> None:
    opened = _open(users)
    with db.session_scope(users) as s:
        stored = s.scalars(select(AppSession.id)).all()
    assert len(stored) == 1 and opened.token not in stored[0] and opened.claim_code != stored[0]


def test_claim_works_once_in_the_same_browser_and_soon(users) -> None:
    opened = _open(users)
    with db.session_scope(users) as s:
        assert sessions.claim(s, opened.claim_code, user_agent=FIREFOX) is None
        assert sessions.claim(s, opened.claim_code, user_agent=CHROME) == opened.token
        assert sessions.claim(s, opened.claim_code, user_agent=CHROME) is None
    late = _open(users)
    with db.session_scope(users) as s:
        s.execute(
            update(AppSession).values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=61))
        )
        assert sessions.claim(s, late.claim_code, user_agent=CHROME) is None


def test_cookie_is_signed(users) -> None:
    token = _open(users).token
    value = sessions.cookie_value(token)
    assert sessions.token_from_cookie(value) == token
    assert sessions.token_from_cookie(token + ".forged") is None
    assert sessions.token_from_cookie("x" + value) is None


def test_resume_rereads_the_role(users) -> None:
    token = _open(users).token
    assert _resume(users, token) == SAM
    assert _resume(users, "no-such-token") is None


@pytest.mark.parametrize(
    "change",
    [
        lambda s: auth.set_disabled(s, principal=ADMIN, username="sam"),
        lambda s: auth.set_role(s, principal=ADMIN, username="sam", role="commissioner"),
        lambda s: auth.reset_password(
            s, principal=ADMIN, username="sam", password="marble-kettle-orbit"
        ),
    ],
    ids=["disabled", "demoted", "password-reset"],
)
def test_admin_changes_end_open_sessions(users, change) -> None:
    tokens = [_open(users).token, _open(users, FIREFOX).token]
    with db.session_scope(users) as s:
        change(s)
    for token, agent in zip(tokens, (CHROME, FIREFOX), strict=True):
        assert isinstance(_resume(users, token, agent), sessions.Ended)


def test_another_browser_cannot_resume_and_ends_it(users) -> None:
    token = _open(users).token
    ended = _resume(users, token, FIREFOX)
    assert isinstance(ended, sessions.Ended) and "another browser" in ended.message
    assert isinstance(_resume(users, token, CHROME), sessions.Ended)


@pytest.mark.parametrize(
    ("column", "age", "reason"),
    [
        ("last_seen_at", dt.timedelta(hours=8, minutes=1), "idle too long"),
        ("created_at", dt.timedelta(days=7, minutes=1), "signed in too long ago"),
    ],
)
def test_idle_and_absolute_expiry(users, column, age, reason) -> None:
    token = _open(users).token
    with db.session_scope(users) as s:
        s.execute(update(AppSession).values({column: dt.datetime.now(dt.UTC) - age}))
    assert isinstance(_resume(users, token), sessions.Ended)
    with db.session_scope(users) as s:
        assert s.scalar(select(AppSession.revoked_reason)) == reason
        event = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert (event.actor, event.action, event.detail) == (
            "sam",
            "sign_out",
            f"Session ended: {reason}.",
        )


def test_expiry_follows_the_settings(users, monkeypatch) -> None:
    monkeypatch.setenv("VRU_SESSION_IDLE_MINUTES", "5")
    token = _open(users).token
    with db.session_scope(users) as s:
        s.execute(
            update(AppSession).values(
                last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)
            )
        )
    assert isinstance(_resume(users, token), sessions.Ended)


def test_sign_out_here_or_everywhere_is_audited(users) -> None:
    here, other, third = (_open(users).token for _ in range(3))
    with db.session_scope(users) as s:
        sessions.sign_out(s, here)
    assert isinstance(_resume(users, here), sessions.Ended)
    assert _resume(users, other) == SAM
    with db.session_scope(users) as s:
        sessions.sign_out(s, other, everywhere=True)
    assert isinstance(_resume(users, third), sessions.Ended)
    with db.session_scope(users) as s:
        details = s.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "sign_out").order_by(AuditEvent.id)
        ).all()
    assert details == ["Signed out.", "Signed out everywhere (2 sessions)."]
