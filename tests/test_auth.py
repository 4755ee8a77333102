"""Passwords, lock-out and single sign-on mapping."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from registry import auth, db
from registry.errors import ConflictError, PermissionDenied, RegistryError
from registry.schema import AppUser, AuditEvent
from tests.conftest import ADMIN, STAFF

SECRET = "a-secret-password-42"


@pytest.fixture
def users(engine):
    with db.session_scope(engine) as s:
        auth.add_user(s, principal=ADMIN, username="alice", role="admin", password=SECRET)
        auth.add_user(s, principal=ADMIN, username="sam", role="staff", password=SECRET)
        auth.add_user(
            s, principal=ADMIN, username="jo", role="commissioner", email="Jo@Example.org"
        )
    return engine


def _user(engine, name: str) -> AppUser:
    with db.session_scope(engine) as s:
        return s.scalar(select(AppUser).where(AppUser.username == name))


def test_hash_is_argon2id_and_not_the_password(users) -> None:
    stored = _user(users, "sam").password_hash
    assert stored.startswith("$argon2id$v=19$")
    assert SECRET not in stored


def test_right_password_signs_in_and_is_audited(users) -> None:
    who = auth.sign_in(users, username="sam", password=SECRET)
    assert who == auth.Principal("sam", "staff", None)
    assert _user(users, "sam").last_login_at is not None


def test_wrong_password_and_unknown_user_get_the_same_answer(users) -> None:
    with pytest.raises(auth.SignInError) as wrong:
        auth.sign_in(users, username="sam", password="not-the-password")
    with pytest.raises(auth.SignInError) as unknown:
        auth.sign_in(users, username="nobody", password="not-the-password")
    assert str(wrong.value) == str(unknown.value)
    with db.session_scope(users) as s:
        failures = s.scalars(
            select(AuditEvent.actor)
            .where(AuditEvent.action == "sign_in_failed")
            .order_by(AuditEvent.id)
        ).all()
    assert failures == ["sam", auth.UNKNOWN_USER]


def test_lock_out_after_repeated_failures_and_reset_lifts_it(users, monkeypatch) -> None:
    monkeypatch.setenv("VRU_LOCKOUT_ATTEMPTS", "3")
    for _ in range(3):
        with pytest.raises(auth.SignInError):
            auth.sign_in(users, username="sam", password="wrong-password")
    locked = _user(users, "sam")
    assert locked.locked_until is not None
    with pytest.raises(auth.SignInError):  # even the right password is refused while locked
        auth.sign_in(users, username="sam", password=SECRET)
    with db.session_scope(users) as s:
        details = s.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "sign_in_failed")
        ).all()
        auth.reset_password(s, principal=ADMIN, username="sam", password="a-new-password-1")
    assert any("Locked for" in d for d in details)
    assert any("locked" in d for d in details)
    assert auth.sign_in(users, username="sam", password="a-new-password-1").role == "staff"


def test_lock_expires(users, monkeypatch) -> None:
    monkeypatch.setenv("VRU_LOCKOUT_ATTEMPTS", "1")
    with pytest.raises(auth.SignInError):
        auth.sign_in(users, username="sam", password="wrong-password")
    with db.session_scope(users) as s:
        user = s.scalar(select(AppUser).where(AppUser.username == "sam"))
        user.locked_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert auth.sign_in(users, username="sam", password=SECRET).username == "sam"


def test_disabled_user_cannot_sign_in(users) -> None:
    with db.session_scope(users) as s:
        auth.set_disabled(s, principal=ADMIN, username="sam")
    with pytest.raises(auth.SignInError):
        auth.sign_in(users, username="sam", password=SECRET)
    with db.session_scope(users) as s, pytest.raises(PermissionDenied):
        auth.principal_for(s, "sam")


def test_no_password_in_logs_exceptions_or_audit(users, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    attempt = "the-wrong-secret-99"
    with pytest.raises(auth.SignInError) as info:
        auth.sign_in(users, username="alice", password=attempt)
    with pytest.raises(RegistryError) as short, db.session_scope(users) as s:
        auth.add_user(s, principal=ADMIN, username="tom", role="staff", password="tiny")
    with db.session_scope(users) as s:
        auth.reset_password(s, principal=ADMIN, username="alice", password="reset-secret-77")
        trail = " ".join(f"{e.before} {e.after} {e.detail}" for e in s.scalars(select(AuditEvent)))
    for secret in (attempt, SECRET, "tiny", "reset-secret-77"):
        assert secret not in str(info.value) and secret not in str(short.value)
        assert secret not in caplog.text
        assert secret not in trail
    assert "argon2" not in trail


def test_single_sign_on_maps_email_to_registry_role(users) -> None:
    assert auth.sign_in(users, email=" jo@example.org ", email_verified=True).role == (
        "commissioner"
    )
    with pytest.raises(auth.SignInError) as info:
        auth.sign_in(users, email="stranger@example.org", email_verified=True)
    assert "no active account" in str(info.value)
    with pytest.raises(auth.SignInError):  # an SSO-only account has no password to guess
        auth.sign_in(users, username="jo", password="")


def test_user_rules(users) -> None:
    with db.session_scope(users) as s:
        with pytest.raises(ConflictError):
            auth.add_user(s, principal=ADMIN, username="sam", role="staff", password=SECRET)
        with pytest.raises(ConflictError):
            auth.add_user(s, principal=ADMIN, username="jo2", role="staff", email="jo@example.org")
        with pytest.raises(RegistryError, match="needs --funder"):
            auth.add_user(s, principal=ADMIN, username="fran", role="funder", password=SECRET)
        with pytest.raises(ConflictError, match="last active admin"):
            auth.set_role(s, principal=ADMIN, username="alice", role="staff")
        with pytest.raises(ConflictError, match="last active admin"):
            auth.set_disabled(s, principal=ADMIN, username="alice")
        with pytest.raises(PermissionDenied):
            auth.list_users(s, principal=STAFF)


def test_funder_sees_only_their_funding_streams(engine) -> None:
    from registry.schema import FundingStream

    with db.session_scope(engine) as s:
        s.add_all(
            [
                FundingStream(name="A", funder="City Hall"),
                FundingStream(name="B", funder="Home Office"),
            ]
        )
    with db.session_scope(engine) as s:
        mine = auth.visible_funding_stream_ids(s, auth.Principal("f", "funder", "City Hall"))
        names = s.scalars(select(FundingStream.name).where(FundingStream.id.in_(mine))).all()
        assert names == ["A"]
        assert auth.visible_funding_stream_ids(s, auth.Principal("f", "funder", None)) == []
        assert auth.visible_funding_stream_ids(s, ADMIN) is None


def _guess_at_once(engine, passwords: list[str]) -> list[bool]:
    """Send every password for sam at the same moment; True where it signed in."""
    barrier = threading.Barrier(len(passwords))

    def one(password: str) -> bool:
        barrier.wait()
        try:
            auth.sign_in(engine, username="sam", password=password)
        except auth.SignInError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=len(passwords)) as pool:
        return list(pool.map(one, passwords))


def _checked_failures(engine) -> list[str]:
    with db.session_scope(engine) as s:
        return list(
            s.scalars(
                select(AuditEvent.detail).where(
                    AuditEvent.action == "sign_in_failed", AuditEvent.actor == "sam"
                )
            )
        )


@pytest.mark.slow
def test_parallel_wrong_guesses_lock_the_account_at_the_limit(users, monkeypatch) -> None:
    """Twenty wrong guesses at once: exactly the limit are checked, the account locks, and the
    right password is refused afterwards (on SQLite and PostgreSQL)."""
    monkeypatch.setenv("VRU_LOCKOUT_ATTEMPTS", "5")
    assert not any(_guess_at_once(users, [f"wrong-guess-{i}" for i in range(20)]))
    details = _checked_failures(users)
    assert len(details) == 20
    assert sum(d.startswith("Wrong password") for d in details) == 5
    assert sum(d.startswith("Wrong password") and "Locked for" in d for d in details) == 1
    assert _user(users, "sam").locked_until is not None
    with pytest.raises(auth.SignInError):
        auth.sign_in(users, username="sam", password=SECRET)


@pytest.mark.slow
def test_right_password_among_parallel_guesses_gets_no_extra_checks(users, monkeypatch) -> None:
    monkeypatch.setenv("VRU_LOCKOUT_ATTEMPTS", "5")
    guesses = [f"wrong-guess-{i}" for i in range(19)] + [SECRET]
    _guess_at_once(users, guesses)
    checked = [d for d in _checked_failures(users) if d.startswith("Wrong password")]
    assert len(checked) <= 5  # never more checks than the limit, whatever the interleaving
    assert _user(users, "sam").locked_until is not None
    with pytest.raises(auth.SignInError):
        auth.sign_in(users, username="sam", password=SECRET)


def test_unknown_user_costs_a_full_check_and_keeps_no_text(users, monkeypatch) -> None:
    checked: list[str] = []
    real = auth._verify

    def spy(password_hash, password):
        checked.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(auth, "_verify", spy)
    typed = "my-Password-typed-in-the-wrong-box"
    with pytest.raises(auth.SignInError):
        auth.sign_in(users, username=typed, password="x")
    assert checked == [auth._dummy_hash()]  # an Argon2 check against the dummy hash
    with db.session_scope(users) as s:
        event = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert (event.actor, event.action) == (auth.UNKNOWN_USER, "sign_in_failed")
        assert typed not in f"{event.actor} {event.detail} {event.before} {event.after}"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Password123!", "commonly used password"),
        ("qwertyuiop12", "too easy to guess|common"),
        ("P@ssw0rd2023", "commonly used password"),
        ("aaaaaaaaaaaaaa", "Repeats"),
        ("short", "at least 10 characters"),
        (" padded-password-words ", "start or end with a space"),
    ],
)
def test_password_policy_refuses_common_passwords(users, password, reason) -> None:
    with db.session_scope(users) as s, pytest.raises(auth.PasswordPolicyError, match=reason):
        auth.add_user(s, principal=ADMIN, username="newbie", role="staff", password=password)


def test_password_policy_counts_the_username_as_known(users) -> None:
    with db.session_scope(users) as s, pytest.raises(auth.PasswordPolicyError):
        auth.add_user(
            s, principal=ADMIN, username="wilberforce", role="staff", password="wilberforce2024"
        )
    with db.session_scope(users) as s:
        auth.add_user(
            s, principal=ADMIN, username="newbie", role="staff", password="kettle-orbit-marble"
        )


def test_single_sign_on_needs_a_verified_email(users) -> None:
    with pytest.raises(auth.SignInError, match="not verified"):
        auth.sign_in(users, email="jo@example.org", email_verified=False)
    with db.session_scope(users) as s:
        event = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert (event.actor, event.action) == ("jo", "sign_in_failed")
    assert _user(users, "jo").last_login_at is None


def test_a_count_left_past_the_limit_locks_instead_of_sticking(users, monkeypatch) -> None:
    """A process killed between counting an attempt and checking it leaves the count high: the
    next attempt locks the account for the lock-out time rather than refusing it for ever."""
    monkeypatch.setenv("VRU_LOCKOUT_ATTEMPTS", "3")
    with db.session_scope(users) as s:
        s.scalar(select(AppUser).where(AppUser.username == "sam")).failed_logins = 3
    with pytest.raises(auth.SignInError):
        auth.sign_in(users, username="sam", password=SECRET)
    locked = _user(users, "sam")
    assert locked.locked_until is not None and locked.failed_logins == 0
