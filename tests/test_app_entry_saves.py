"""Entry that never loses or half-saves (issue #15): consecutive saves on the One return form,
every refused page write leaving the database byte-identical, the grid's month range and blank
rows, and tabs that fail independently."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from registry import db, deliveries
from registry.errors import ConflictError
from registry.periods import add_months, format_month, last_complete_month
from tests.conftest import ADMIN, STAFF
from tests.entry_helpers import OPEN, add_programmes, dump

# Slow lane: pages rendered with AppTest; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
ENTRY = "dashboards/entry.py"


@pytest.fixture
def url(db_url):
    engine = db.make_engine(db_url)
    with db.make_session_factory(engine)() as s:
        add_programmes(s)
    engine.dispose()
    return db_url


def page(url: str, monkeypatch, path: str = ENTRY, principal=STAFF) -> AppTest:
    monkeypatch.setenv("VRU_DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = principal
    at.run()
    at.switch_page(path).run()
    assert not at.exception
    return at


def snapshot(url: str) -> dict[str, list[tuple]]:
    engine = db.make_engine(url)
    try:
        return dump(engine)
    finally:
        engine.dispose()


def elsewhere(url: str, fn) -> None:
    """Another person's change, made outside the page under test."""
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        fn(s)
    engine.dispose()


def record(month: str, opportunities: int, borough: str = "Hackney", **figures):
    """Someone reads the figures for ``borough`` and ``month``, then saves new ones."""

    def save(s) -> None:
        read = deliveries.get_delivery(
            s,
            principal=ADMIN,
            programme=OPEN,
            borough=borough,
            month=dt.date.fromisoformat(f"{month}-01"),
        )
        deliveries.save_delivery(
            s,
            principal=ADMIN,
            programme=OPEN,
            borough=borough,
            month=month,
            opportunities=opportunities,
            read=read,
            **figures,
        )

    return save


def form_inputs(at: AppTest) -> dict[str, object]:
    return {n.label: n.value for n in at.number_input if n.key.startswith("form_")}


def set_form(at: AppTest, opportunities: int, participants: int | None = None) -> None:
    for n in at.number_input:
        if n.key.startswith("form_opportunities_"):
            n.set_value(opportunities)
        elif n.key.startswith("form_participants_") and participants is not None:
            n.set_value(participants)


def open_form(at: AppTest, month: str = "2022-04", borough: str = "Hackney") -> None:
    at.selectbox(key="form_programme").select(OPEN)
    at.selectbox(key="form_borough").select(borough)
    at.text_input(key="form_month").input(month).run()


SAVE = "FormSubmitter:delivery_form-Save"


# --- the One return form ---------------------------------------------------------------------


def test_consecutive_saves_on_the_form_each_save(url, monkeypatch) -> None:
    elsewhere(url, record("2022-04", 50, participants=20))
    at = page(url, monkeypatch)
    open_form(at)
    set_form(at, 60)
    at.button(key=SAVE).click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Amended the figures")
    # The form now shows what was saved, as the new version, not the figures first read.
    assert form_inputs(at)["Positive opportunities"] == 60
    set_form(at, 61, participants=31)
    at.button(key=SAVE).click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Amended the figures"), at.success[0].value
    assert form_inputs(at)["Positive opportunities"] == 61
    assert form_inputs(at)["Participants (optional)"] == 31
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        saved = deliveries.get_delivery(
            s, principal=STAFF, programme=OPEN, borough="Hackney", month=dt.date(2022, 4, 1)
        )
    engine.dispose()
    assert (saved["opportunities"], saved["participants"], saved["version"]) == (61, 31, 3)
    # A third save of the same figures changes nothing, and says so.
    at.button(key=SAVE).click().run()
    assert at.success[0].value.startswith("No change to the figures")


def test_a_new_return_then_an_amendment(url, monkeypatch) -> None:
    at = page(url, monkeypatch)
    open_form(at)
    set_form(at, 60, participants=30)
    at.button(key=SAVE).click().run()
    assert at.success[0].value.startswith("Added the figures")
    set_form(at, 61, participants=31)
    at.button(key=SAVE).click().run()
    assert at.success[0].value.startswith("Amended the figures")
    assert form_inputs(at)["Positive opportunities"] == 61


def test_refused_form_save_leaves_the_database_unchanged(url, monkeypatch) -> None:
    at = page(url, monkeypatch)
    open_form(at)  # read: nothing recorded
    elsewhere(url, record("2022-04", 7))  # someone else records it meanwhile
    before = snapshot(url)
    set_form(at, 12)
    at.button(key=SAVE).click().run()
    assert not at.exception
    assert "was recorded by alice since you read it" in at.error[0].value
    assert snapshot(url) == before


def test_refused_delete_leaves_the_database_unchanged(url, monkeypatch) -> None:
    elsewhere(url, record("2022-04", 7))
    at = page(url, monkeypatch)
    open_form(at)
    elsewhere(url, record("2022-04", 8))  # amended since this page read version 1
    before = snapshot(url)
    at.text_input(key="delete_reason").input("entered twice")
    at.button(key="delete_delivery").click().run()
    assert not at.exception
    assert "changed by alice since you read them" in at.error[0].value
    assert snapshot(url) == before


def test_a_bad_month_on_one_tab_leaves_the_others_working(url, monkeypatch) -> None:
    at = page(url, monkeypatch)
    at.text_input(key="form_month").input("April").run()
    assert not at.exception
    assert "April" in at.error[0].value
    # The grid and the upload tab are still drawn.
    assert at.data_editor and [u.key for u in at.get("file_uploader")] == ["upload_file_0"]
    at.text_input(key="grid_from").input("2022-13").run()
    assert not at.exception
    assert [u.key for u in at.get("file_uploader")] == ["upload_file_0"]
    assert any(b.key == "form_reload" for b in at.button) is False  # the form is still refused
    at.text_input(key="form_month").input("2022-04").run()
    assert any(n.key.startswith("form_opportunities_") for n in at.number_input)


# --- the grid --------------------------------------------------------------------------------


def test_grid_shows_the_last_three_months_newest_first(url, monkeypatch) -> None:
    latest = last_complete_month()
    for back in range(5):
        elsewhere(url, record(format_month(add_months(latest, -back)), 10 + back))
    at = page(url, monkeypatch)
    at.selectbox(key="grid_programme").select(OPEN).run()
    grid = at.data_editor[0].value
    assert grid["month"].tolist() == [format_month(add_months(latest, -b)) for b in range(3)]
    assert grid["opportunities"].tolist() == [10, 11, 12]
    at.text_input(key="grid_from").input(format_month(add_months(latest, -4))).run()
    assert len(at.data_editor[0].value) == 5


def test_grid_ignores_blank_rows_and_says_what_it_would_save(url, monkeypatch) -> None:
    elsewhere(url, record("2022-01", 4, borough="Camden"))
    at = page(url, monkeypatch)
    at.selectbox(key="grid_programme").select(OPEN)
    at.text_input(key="grid_from").input("2022-01")
    at.text_input(key="grid_to").input("2022-01").run()
    editor = at.data_editor[0]
    at.session_state[editor.key] = {
        "edited_rows": {0: {"opportunities": 9}},
        "added_rows": [{"borough": "Brent", "month": "2022-01", "opportunities": 2}, {}],
        "deleted_rows": [],
    }
    at.run()
    assert "Would add 1 and amend 1 when saved." in [i.value for i in at.info]
    at.button(key="grid_save").click().run()
    assert not at.exception
    assert "Saved: 1 added, 1 amended." in at.success[0].value


def test_grid_refuses_a_row_it_does_not_show(url, monkeypatch) -> None:
    elsewhere(url, record("2021-12", 4, borough="Camden"))
    at = page(url, monkeypatch)
    at.selectbox(key="grid_programme").select(OPEN)
    at.text_input(key="grid_from").input("2022-01")
    at.text_input(key="grid_to").input("2022-01").run()
    editor = at.data_editor[0]
    at.session_state[editor.key] = {
        "edited_rows": {},
        "added_rows": [{"borough": "Camden", "month": "2021-12", "opportunities": 40}],
        "deleted_rows": [],
    }
    at.run()
    before = snapshot(url)
    at.button(key="grid_save").click().run()
    assert not at.exception
    assert "Camden already has figures for 2021-12" in at.error[0].value
    assert snapshot(url) == before


def test_refused_grid_save_leaves_the_database_unchanged(url, monkeypatch) -> None:
    elsewhere(url, record("2022-01", 4, borough="Camden"))
    at = page(url, monkeypatch)
    at.selectbox(key="grid_programme").select(OPEN)
    at.text_input(key="grid_from").input("2022-01")
    at.text_input(key="grid_to").input("2022-01").run()
    elsewhere(url, record("2022-01", 5, borough="Camden"))
    editor = at.data_editor[0]
    at.session_state[editor.key] = {
        "edited_rows": {0: {"opportunities": 9}},
        "added_rows": [{"borough": "Brent", "month": "2022-01", "opportunities": 2}],
        "deleted_rows": [],
    }
    at.run()
    before = snapshot(url)
    at.button(key="grid_save").click().run()
    assert not at.exception
    assert "opportunities: 4 → 5" in at.error[0].value
    assert snapshot(url) == before


# --- uploads ---------------------------------------------------------------------------------

CSV = f"programme,borough,month,opportunities\n{OPEN},Camden,2022-01,4\n{OPEN},Brent,2022-01,2\n"


def upload(at: AppTest, content: str, generation: int = 0) -> None:
    at.file_uploader(key=f"upload_file_{generation}").set_value(
        ("d.csv", content.encode(), "text/csv")
    ).run()


def test_refused_stale_upload_leaves_the_database_unchanged(url, monkeypatch) -> None:
    elsewhere(url, record("2022-01", 3, borough="Camden"))
    at = page(url, monkeypatch)
    upload(at, CSV)
    assert {m.label: m.value for m in at.metric}["Would amend"] == "1"
    elsewhere(url, record("2022-01", 6, borough="Camden"))  # changed after the preview
    before = snapshot(url)
    at.button(key="upload_confirm").click().run()
    assert not at.exception
    assert "nothing was saved" in at.error[0].value
    assert snapshot(url) == before  # no import batch, no audit event, no row


def test_a_refusal_after_writing_still_leaves_nothing(url, monkeypatch) -> None:
    """The page's transaction, not the registry's order of checks, is what keeps a refused save
    from committing: a refusal raised after every row was written still leaves nothing."""
    written = deliveries.write._write_changes

    def write_then_refuse(*args, **kwargs):
        written(*args, **kwargs)
        raise ConflictError("Refused after writing.")

    monkeypatch.setattr(deliveries.write, "_write_changes", write_then_refuse)
    at = page(url, monkeypatch)
    upload(at, CSV)
    before = snapshot(url)
    at.button(key="upload_confirm").click().run()
    assert not at.exception
    assert at.error[0].value == "Refused after writing."
    assert snapshot(url) == before
    assert not at.success


def test_upload_received_date_and_backfill_are_recorded(url, monkeypatch) -> None:
    at = page(url, monkeypatch)
    upload(at, CSV)
    at.checkbox(key="upload_backfill").check()
    at.button(key="upload_confirm").click().run()
    assert not at.exception
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        frame = deliveries.completeness(
            s, principal=STAFF, start=dt.date(2022, 1, 1), end=dt.date(2022, 1, 1)
        )
    engine.dispose()
    assert set(frame["status"]) == {"backfilled"}


# --- sign-off, reopen and the programmes page ------------------------------------------------


def test_refused_sign_off_and_reopen_leave_the_database_unchanged(url, monkeypatch) -> None:
    at = page(url, monkeypatch, "dashboards/completeness.py", principal=ADMIN)
    at.text_input(key="sign_month").input("2022-01").run()
    at.button(key="sign_off").click().run()
    elsewhere(
        url, lambda s: deliveries.sign_off_month(s, principal=ADMIN, month=dt.date(2022, 1, 1))
    )
    before = snapshot(url)
    at.button(key="sign_off_confirm").click().run()
    assert not at.exception
    assert "2022-01 is already signed off." in at.error[0].value
    assert snapshot(url) == before
    at.button(key="reopen").click().run()  # no reason given
    assert "Give a reason for reopening the month." in at.error[0].value
    assert snapshot(url) == before


def test_sign_off_can_be_cancelled(url, monkeypatch) -> None:
    at = page(url, monkeypatch, "dashboards/completeness.py", principal=ADMIN)
    at.text_input(key="sign_month").input("2022-01").run()
    at.button(key="sign_off").click().run()
    before = snapshot(url)
    at.button(key="sign_off_cancel").click().run()
    assert not at.exception
    assert not [b for b in at.button if b.key == "sign_off_confirm"]
    assert snapshot(url) == before


PROGRAMMES = "dashboards/programmes.py"


def test_refused_programme_forms_leave_the_database_unchanged(url, monkeypatch) -> None:
    elsewhere(url, record("2022-03", 4))
    at = page(url, monkeypatch, PROGRAMMES)
    before = snapshot(url)
    at.text_input(key="stream_name").input("Test Fund")
    at.text_input(key="stream_funder").input("Someone")
    at.button(key="FormSubmitter:add_stream-Add funding stream").click().run()
    assert "already exists" in at.error[0].value
    assert snapshot(url) == before
    at.text_input(key="programme_name").input(OPEN.upper())
    at.button(key="FormSubmitter:add_programme-Add programme").click().run()
    assert "already exists" in at.error[0].value
    assert snapshot(url) == before
    # Renaming and closing before a recorded month: the rename is undone with the refusal.
    at.selectbox(key="edit_target").select(OPEN).run()
    at.text_input(key=f"edit_name_{OPEN}").input("Renamed")
    at.date_input(key=f"edit_end_{OPEN}").set_value(dt.date(2022, 1, 31))
    at.button(key="edit_save").click().run()
    assert not at.exception
    assert "after the end date" in at.error[0].value
    assert snapshot(url) == before
