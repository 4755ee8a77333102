"""Pages by role: what each role can reach, and the admin pages working."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from registry import db
from registry.schema import AppUser, AuditEvent
from tests.conftest import ADMIN, COMMISSIONER, FUNDER, STAFF
from tests.test_app_home import app_as

# Slow lane: pages rendered with AppTest; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

ADMIN_PAGES = ["dashboards/users.py", "dashboards/audit_log.py", "dashboards/outcome_data.py"]
DASHBOARD_PAGES = ["dashboards/overview.py", "dashboards/explore.py", "dashboards/models.py"]
ENTRY_PAGES = ["dashboards/entry.py", "dashboards/programmes.py", "dashboards/completeness.py"]


@pytest.mark.parametrize(
    "principal,page",
    [(p, page) for p in (STAFF, COMMISSIONER, FUNDER) for page in ADMIN_PAGES]
    + [(FUNDER, page) for page in ENTRY_PAGES + DASHBOARD_PAGES]
    + [(COMMISSIONER, "dashboards/entry.py")],
)
def test_roles_cannot_reach_pages_beyond_them(db_url, monkeypatch, principal, page) -> None:
    at = app_as(db_url, monkeypatch, principal)
    assert not at.exception
    # The page is not in this role's navigation, so no URL or switch can open it ...
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(page)
    # ... and the registry refuses the data behind it anyway (tests/test_auth.py, test_audit.py).


@pytest.mark.parametrize("principal", [ADMIN, STAFF, COMMISSIONER])
def test_readers_of_outcomes_reach_the_dashboard(db_url, monkeypatch, principal) -> None:
    at = app_as(db_url, monkeypatch, principal)
    for page in DASHBOARD_PAGES:
        at.switch_page(page).run()
        assert not at.exception


def test_admin_adds_a_user_on_the_users_page(db_url, monkeypatch) -> None:
    at = app_as(db_url, monkeypatch, ADMIN)
    at.switch_page("dashboards/users.py").run()
    assert at.title[0].value == "Users"
    at.text_input(key="add_username").input("newbie")
    at.selectbox(key="add_role").select("commissioner")
    at.text_input(key="add_password").input("short")
    at.button[0].click().run()
    assert "at least 10 characters" in at.error[0].value
    at.text_input(key="add_username").input("newbie")
    at.selectbox(key="add_role").select("commissioner")
    at.text_input(key="add_password").input("a-long-enough-password")
    at.button[0].click().run()
    assert not at.exception
    assert at.success[0].value == "Added newbie."
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as s:
        user = s.scalar(select(AppUser).where(AppUser.username == "newbie"))
        assert user.role == "commissioner"
        event = s.scalars(select(AuditEvent)).one()
        assert (event.actor, event.action) == ("alice", "create")
    engine.dispose()


def test_admin_reads_and_filters_the_audit_trail(seeded_url, monkeypatch) -> None:
    at = app_as(seeded_url, monkeypatch, ADMIN)
    at.switch_page("dashboards/audit_log.py").run()
    assert not at.exception
    assert at.title[0].value == "Audit trail"
    frame = at.dataframe[0].value
    assert list(frame["action"]) == ["seed"]
    at.selectbox(key="audit_action").select("create").run()
    assert at.dataframe[0].value.empty
