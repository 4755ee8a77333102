"""Sessions in the app (AppTest): an open page loses its rights at its next action once the
user is disabled or demoted, sessions expire, and signing out is audited."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select, update
from streamlit.testing.v1 import AppTest

from registry import auth, db
from registry.schema import AppSession, AuditEvent
from tests.conftest import ADMIN

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PASSWORD = "kettle-orbit-marble"


@pytest.fixture
def signed_in(db_url, monkeypatch) -> AppTest:
    """sam (staff) signed in through the form, on the Record deliveries page."""
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        auth.add_user(s, principal=ADMIN, username="alice", role="admin", password=PASSWORD)
        auth.add_user(s, principal=ADMIN, username="sam", role="staff", password=PASSWORD)
    engine.dispose()
    monkeypatch.setenv("VRU_DATABASE_URL", db_url)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input(key="sign_in_username").input("sam")
    at.text_input(key="sign_in_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert "Signed in as **sam** (staff)" in [m.value for m in at.sidebar.markdown]
    at.switch_page("dashboards/entry.py").run()
    assert at.title[0].value == "Record deliveries"
    return at


def _change(url: str, fn) -> None:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        fn(s)
    engine.dispose()


def _signed_out(at: AppTest) -> str:
    """The message the sign-in page shows, after checking nothing else is on screen."""
    assert not at.exception
    assert at.title[0].value == "Sign in to the VRU registry"
    assert not at.sidebar.button  # no sign-out, no navigation: nothing of the registry
    return at.info[0].value


def test_disabling_ends_an_open_session_at_its_next_action(signed_in, db_url) -> None:
    _change(db_url, lambda s: auth.set_disabled(s, principal=ADMIN, username="sam"))
    signed_in.run()  # any action: a widget change, a click, a rerun
    assert "account disabled" in _signed_out(signed_in)


def test_demoting_ends_an_open_session(signed_in, db_url) -> None:
    _change(
        db_url, lambda s: auth.set_role(s, principal=ADMIN, username="sam", role="commissioner")
    )
    signed_in.run()
    assert "role changed" in _signed_out(signed_in)


def test_idle_session_expires(signed_in, db_url) -> None:
    _change(
        db_url,
        lambda s: s.execute(
            update(AppSession).values(
                last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=8, minutes=1)
            )
        ),
    )
    signed_in.run()
    assert "480 minutes without activity" in _signed_out(signed_in)


def test_sign_out_is_audited_and_ends_the_session(signed_in, db_url) -> None:
    signed_in.sidebar.button(key="sign_out").click().run()
    assert signed_in.title[0].value == "Sign in to the VRU registry"
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        event = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert (event.actor, event.action, event.detail) == ("sam", "sign_out", "Signed out.")
        assert s.scalar(select(AppSession.revoked_reason)) == "signed out"
    engine.dispose()
