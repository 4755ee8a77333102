"""The data-entry pages under AppTest: the form, the grid, upload with preview and confirm, a bad
file's errors, the programmes page and the returns/sign-off page."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from registry import db, deliveries
from registry.schema import Delivery, MonthSignOff, Programme
from tests.conftest import ADMIN, COMMISSIONER, STAFF, tables_without_csv
from tests.entry_helpers import OPEN, add_programmes

# Slow lane: pages rendered with AppTest; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
CORPUS = Path(__file__).parent / "fixtures" / "bad_uploads"


@pytest.fixture
def url(db_url):
    engine = db.make_engine(db_url)
    with db.make_session_factory(engine)() as s:
        add_programmes(s)
    engine.dispose()
    return db_url


def page(url: str, monkeypatch, path: str, principal=STAFF) -> AppTest:
    monkeypatch.setenv("VRU_DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = principal
    at.run()
    at.switch_page(path).run()
    assert not at.exception
    return at


def rows(url: str) -> list[tuple]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        got = conn.execute(
            select(Delivery.borough_id, Delivery.month, Delivery.opportunities, Delivery.version)
            .where(Delivery.deleted_at.is_(None))
            .order_by(Delivery.id)
        ).all()
    engine.dispose()
    return [tuple(r) for r in got]


def rows_of(url: str, model) -> list:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        got = conn.execute(select(model)).all()
    engine.dispose()
    return got


def test_form_records_one_return(url, monkeypatch) -> None:
    at = page(url, monkeypatch, "dashboards/entry.py")
    at.selectbox(key="form_programme").select(OPEN)
    at.selectbox(key="form_borough").select("Camden")
    at.text_input(key="form_month").input("2022-04").run()
    assert "Nothing recorded yet" in at.caption[0].value
    key = next(n for n in at.number_input if n.key.startswith("form_opportunities_"))
    key.set_value(12)
    at.button(key="FormSubmitter:delivery_form-Save").click().run()
    assert not at.exception
    assert "Added the figures" in at.success[0].value
    assert [r[2:] for r in rows(url)] == [(12, 1)]


def test_form_shows_a_refusal_as_an_error(url, monkeypatch) -> None:
    at = page(url, monkeypatch, "dashboards/entry.py")
    at.selectbox(key="form_programme").select("Closed Project")
    at.text_input(key="form_month").input("2022-04").run()
    next(n for n in at.number_input if n.key.startswith("form_opportunities_")).set_value(3)
    at.button(key="FormSubmitter:delivery_form-Save").click().run()
    assert not at.exception
    assert "After the programme closed" in at.error[0].value
    assert rows(url) == []


def test_grid_edits_and_saves(url, monkeypatch) -> None:
    csv = f"programme,borough,month,opportunities\n{OPEN},Camden,2022-01,4\n".encode()
    at = page(url, monkeypatch, "dashboards/entry.py")
    at.file_uploader(key="upload_file_0").set_value(("d.csv", csv, "text/csv")).run()
    at.button(key="upload_confirm").click().run()
    at.selectbox(key="grid_programme").select(OPEN)
    at.text_input(key="grid_from").input("2022-01")
    at.text_input(key="grid_to").input("2022-01").run()
    editor = at.data_editor[0]
    assert editor.value["opportunities"].tolist() == [4]
    at.session_state[editor.key] = {
        "edited_rows": {0: {"opportunities": 9}},
        "added_rows": [{"borough": "Brent", "month": "2022-01", "opportunities": 2}],
        "deleted_rows": [],
    }
    at.run()
    at.button(key="grid_save").click().run()
    assert not at.exception
    assert "1 added, 1 amended" in at.success[0].value
    assert sorted(r[2:] for r in rows(url)) == [(2, 1), (9, 2)]
    at.run()  # the grid reloads with the saved figures and no pending edits
    assert sorted(at.data_editor[0].value["opportunities"].tolist()) == [2, 9]
    assert at.data_editor[0].key != editor.key


def test_upload_previews_then_saves(url, monkeypatch) -> None:
    csv = (
        "programme,borough,month,opportunities,participants,spend_gbp\n"
        f"{OPEN},Camden,2022-01,4,3,10.00\n{OPEN},Westminster,2022-01,5,,\n"
    ).encode()
    at = page(url, monkeypatch, "dashboards/entry.py")
    at.file_uploader(key="upload_file_0").set_value(("d.csv", csv, "text/csv")).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric} == {
        "Would add": "2",
        "Would amend": "0",
        "Unchanged": "0",
    }
    assert rows(url) == []  # the preview writes nothing
    at.button(key="upload_confirm").click().run()
    assert not at.exception
    assert "2 added, 0 amended, 0 unchanged" in at.success[0].value
    assert len(rows(url)) == 2
    # The saved file's preview and its button are gone; a fresh, empty uploader is offered.
    assert not at.metric and not [b for b in at.button if b.key == "upload_confirm"]
    assert [u.key for u in at.get("file_uploader")] == ["upload_file_1"]


def test_bad_upload_shows_the_errors_and_writes_nothing(url, monkeypatch, downloaded) -> None:
    content = (CORPUS / "31_mixture.csv").read_bytes()
    at = page(url, monkeypatch, "dashboards/entry.py")
    at.file_uploader(key="upload_file_0").set_value(("31_mixture.csv", content, "text/csv")).run()
    assert not at.exception
    assert "The file has 6 problem(s)" in at.error[0].value
    assert "row 2, programme: Unknown programme" in at.error[0].value
    assert not [b for b in at.button if b.key == "upload_confirm"]
    assert not at.metric  # a refused file shows nothing as added
    assert rows(url) == []
    # The whole list of problems can be downloaded, to fix the file or send back.
    problems = pd.read_csv(io.BytesIO(downloaded(at, "errors_csv")))
    assert list(problems.columns) == ["row", "column", "value", "reason"]
    assert len(problems) == 6
    assert (problems["row"] == 2).any()


def test_programmes_page_adds_a_programme(url, monkeypatch) -> None:
    at = page(url, monkeypatch, "dashboards/programmes.py")
    at.text_input(key="programme_name").input("Night Buses")
    at.button(key="FormSubmitter:add_programme-Add programme").click().run()
    assert not at.exception
    assert "Added programme Night Buses" in at.success[0].value
    engine = db.make_engine(url)
    with engine.connect() as conn:
        assert "Night Buses" in conn.scalars(select(Programme.name)).all()
    engine.dispose()


def test_commissioner_sees_programmes_but_not_the_entry_page(url, monkeypatch) -> None:
    at = page(url, monkeypatch, "dashboards/programmes.py", principal=COMMISSIONER)
    assert not [e for e in at.expander if "Add a programme" in e.label]
    monkeypatch.setenv("VRU_DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["principal"] = COMMISSIONER
    at.run()
    with pytest.raises(Exception):  # noqa: B017 - the page is not in this role's navigation
        at.switch_page("dashboards/entry.py").run()


def test_returns_page_and_admin_sign_off(url, monkeypatch) -> None:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:  # Camden reported, so one return is expected a month
        deliveries.save_delivery(
            s, principal=STAFF, programme=OPEN, borough="Camden", month="2021-12", opportunities=3
        )
    engine.dispose()
    at = page(url, monkeypatch, "dashboards/completeness.py", principal=ADMIN)
    at.text_input(key="sign_month").input("2022-01")
    at.text_input(key="sign_note").input("checked")
    at.button(key="sign_off").click().run()
    assert not at.exception
    # First the admin is told what is missing, and nothing is signed off yet.
    assert "1 of 1 expected returns for 2022-01 are missing" in at.warning[-1].value
    assert rows_of(url, MonthSignOff) == []
    at.button(key="sign_off_confirm").click().run()
    assert not at.exception
    assert "2022-01 is signed off with 1 returns missing." in at.success[0].value
    assert not [b for b in at.button if b.key == "sign_off_confirm"]
    engine = db.make_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(select(MonthSignOff.signed_off_by)) == ADMIN.username
    engine.dispose()
    staff = page(url, monkeypatch, "dashboards/completeness.py", principal=STAFF)
    assert not [b for b in staff.button if b.key == "sign_off"]


def test_missing_returns_and_programmes_download_as_shown(url, monkeypatch, downloaded) -> None:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:  # one return, so the months after it are due
        deliveries.save_delivery(
            s, principal=STAFF, programme=OPEN, borough="Camden", month="2022-01", opportunities=3
        )
    engine.dispose()
    at = page(url, monkeypatch, "dashboards/completeness.py")
    gaps = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert len(gaps) > 0
    assert set(gaps["status"]) <= {"missing", "late"}
    assert downloaded(at, "gaps_csv") == gaps.to_csv(index=False).encode()
    at = page(url, monkeypatch, "dashboards/programmes.py")
    assert tables_without_csv(at, downloaded) == []
    assert OPEN.encode() in downloaded(at, "programmes_csv")


def test_form_on_a_read_only_database_says_so(url, monkeypatch) -> None:
    if not url.startswith("sqlite"):
        pytest.skip("a read-only SQLite URL stands in for any read-only database")
    read_only = f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
    at = page(read_only, monkeypatch, "dashboards/entry.py")
    at.selectbox(key="form_programme").select(OPEN)
    at.selectbox(key="form_borough").select("Camden")
    at.text_input(key="form_month").input("2022-04").run()
    next(n for n in at.number_input if n.key.startswith("form_opportunities_")).set_value(12)
    at.button(key="FormSubmitter:delivery_form-Save").click().run()
    assert not at.exception
    assert at.error[0].value.startswith("The database is read-only, so nothing was saved.")
    assert rows(url) == []


def test_returns_page_names_programmes_that_never_reported(url, monkeypatch) -> None:
    at = page(url, monkeypatch, "dashboards/completeness.py")
    assert {m.label: m.value for m in at.metric}["Missing"] == "0"
    assert f"Not counted: {OPEN}" in at.warning[0].value
    assert "never reported a delivery" in at.warning[0].value


def test_returns_page_refuses_a_period_that_ends_before_it_starts(url, monkeypatch) -> None:
    at = page(url, monkeypatch, "dashboards/completeness.py")
    at.text_input(key="complete_from").input("2023-06")
    at.text_input(key="complete_to").input("2023-01").run()
    assert not at.exception
    assert "The period ends (2023-01) before it starts (2023-06)." in at.error[0].value
    assert not at.metric and not at.warning
