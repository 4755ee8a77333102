"""Recording deliveries: form, grid and file share one set of rules; amendments, conflicts,
soft deletes, plausibility warnings, sign-off and completeness, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import select

from registry import db, deliveries
from registry.errors import ConflictError, NotFoundError, PermissionDenied, RegistryError
from registry.schema import AuditEvent, Delivery, ImportBatch
from tests.conftest import ADMIN, COMMISSIONER, STAFF
from tests.entry_helpers import CLOSED, OPEN, add_programmes, dump

CSV = (
    "programme,borough,month,opportunities,participants,spend_gbp\n"
    f"{OPEN},Camden,2022-01,10,8,100.50\n"
    f"{OPEN},E09000033,2022-01,5,,\n"
    f"{OPEN},Kensington & Chelsea,2022-02,7,7,70\n"
)


@pytest.fixture
def ready(session):
    add_programmes(session)
    return session


def _import(session, text: str, name: str = "d.csv", dry_run: bool = False, who=STAFF):
    result = deliveries.import_file(
        session, principal=who, content=text.encode(), file_name=name, dry_run=dry_run
    )
    session.commit()
    return result


def test_upload_adds_rows_records_batch_and_audit(ready) -> None:
    result = _import(ready, CSV)
    assert result.summary() == {
        "added": 3,
        "amended": 0,
        "unchanged": 0,
        "rejected": 0,
        "errors": [],
    }
    rows = ready.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [(r.opportunities, r.participants, r.version) for r in rows] == [
        (10, 8, 1),
        (5, None, 1),
        (7, 7, 1),
    ]
    assert str(rows[0].spend_gbp) == "100.50"
    batch = ready.scalar(select(ImportBatch).where(ImportBatch.kind == "deliveries"))
    assert batch.file_name == "d.csv" and len(batch.sha256) == 64
    assert batch.rows_read == 3 and batch.rows_accepted == 3
    assert batch.created_by == STAFF.username
    events = ready.scalars(select(AuditEvent).where(AuditEvent.action == "import")).all()
    assert len(events) == 1 and events[0].after["added"] == 3


def test_dry_run_writes_nothing(ready) -> None:
    before = ready.scalar(select(Delivery.id))
    result = _import(ready, CSV, dry_run=True)
    assert result.count("added") == 3
    assert before is None and ready.scalar(select(Delivery.id)) is None


def test_reimport_of_the_same_file_twice_changes_nothing(ready, engine) -> None:
    _import(ready, CSV)
    first = dump(engine)
    again = _import(ready, CSV)
    assert again.summary()["unchanged"] == 3
    assert again.count("added") == again.count("amended") == 0
    # No new import batch, no audit event: the database is exactly as it was.
    assert dump(engine) == first
    third = _import(ready, CSV)
    assert third.count("unchanged") == 3
    assert dump(engine) == first


def test_new_figures_are_amendments_kept_and_audited(ready) -> None:
    _import(ready, CSV)
    amended = CSV.replace("Camden,2022-01,10,8,100.50", "Camden,2022-01,12,8,100.50")
    preview = deliveries.preview_upload(
        ready, principal=STAFF, content=amended.encode(), file_name="d2.csv"
    )
    table = preview.table()
    row = table[table["status"] == "amended"].iloc[0]
    assert row["row"] == 2 and "opportunities 10" in row["was"]
    result = _import(ready, amended, "d2.csv")
    assert (result.count("added"), result.count("amended"), result.count("unchanged")) == (0, 1, 2)
    camden = ready.scalar(select(Delivery).where(Delivery.opportunities == 12))
    assert camden.version == 2 and camden.updated_by == STAFF.username
    event = ready.scalar(
        select(AuditEvent).where(AuditEvent.action == "amend", AuditEvent.entity == "delivery")
    )
    assert event.actor == STAFF.username
    assert event.entity_id == str(camden.id)
    assert event.before["opportunities"] == 10 and event.after["opportunities"] == 12
    assert event.occurred_at is not None


def test_form_records_then_amends_with_the_version_read(ready) -> None:
    month = dt.date(2022, 3, 1)
    added = deliveries.save_delivery(
        ready,
        principal=STAFF,
        programme=OPEN,
        borough="Hackney",
        month=month,
        opportunities=4,
        participants=3,
        spend_gbp="40",
    )
    ready.commit()
    assert added.added == 1
    read = deliveries.get_delivery(
        ready, principal=STAFF, programme=OPEN, borough="hackney", month=month
    )
    assert read["opportunities"] == 4 and read["version"] == 1
    amended = deliveries.save_delivery(
        ready,
        principal=STAFF,
        programme=OPEN,
        borough="Hackney",
        month=month,
        opportunities=6,
        participants=3,
        spend_gbp="40",
        read=read,
    )
    ready.commit()
    assert amended.amended == 1
    assert (
        deliveries.get_delivery(
            ready, principal=STAFF, programme=OPEN, borough="Hackney", month=month
        )["version"]
        == 2
    )


def test_form_refuses_invalid_figures(ready) -> None:
    with pytest.raises(RegistryError, match="More participants than opportunities"):
        deliveries.save_delivery(
            ready,
            principal=STAFF,
            programme=OPEN,
            borough="Hackney",
            month=dt.date(2022, 3, 1),
            opportunities=2,
            participants=3,
        )
    with pytest.raises(RegistryError, match="After the programme closed"):
        deliveries.save_delivery(
            ready,
            principal=STAFF,
            programme=CLOSED,
            borough="Hackney",
            month="2021-07",
            opportunities=2,
        )


def test_second_of_two_concurrent_form_edits_is_refused(ready, engine) -> None:
    """Two people load version 1; the first save wins, the second is refused, naming the
    change, and nothing of the second is written."""
    month = dt.date(2022, 3, 1)
    deliveries.save_delivery(
        ready, principal=STAFF, programme=OPEN, borough="Brent", month=month, opportunities=10
    )
    ready.commit()
    factory = db.make_session_factory(engine)
    with factory() as one, factory() as two:
        read_one = deliveries.get_delivery(
            one, principal=STAFF, programme=OPEN, borough="Brent", month=month
        )
        read_two = deliveries.get_delivery(
            two, principal=ADMIN, programme=OPEN, borough="Brent", month=month
        )
        one.commit()
        two.commit()
        deliveries.save_delivery(
            one,
            principal=STAFF,
            programme=OPEN,
            borough="Brent",
            month=month,
            opportunities=11,
            read=read_one,
        )
        one.commit()
        with pytest.raises(ConflictError) as refused:
            deliveries.save_delivery(
                two,
                principal=ADMIN,
                programme=OPEN,
                borough="Brent",
                month=month,
                opportunities=15,
                read=read_two,
            )
        two.rollback()
    message = str(refused.value)
    assert "opportunities: 10 → 11" in message and STAFF.username in message
    row = ready.scalar(select(Delivery))
    ready.refresh(row)
    assert row.opportunities == 11 and row.version == 2


def test_form_refuses_adding_a_row_someone_else_just_added(ready) -> None:
    month = dt.date(2022, 3, 1)
    deliveries.save_delivery(
        ready, principal=STAFF, programme=OPEN, borough="Brent", month=month, opportunities=10
    )
    ready.commit()
    with pytest.raises(ConflictError, match=r"recorded by sam .*opportunities: \(none\) → 10"):
        deliveries.save_delivery(
            ready,
            principal=ADMIN,
            programme=OPEN,
            borough="Brent",
            month=month,
            opportunities=3,
            read=None,
        )


def test_import_amendment_of_a_row_changed_after_preview_is_refused(ready, engine) -> None:
    _import(ready, CSV)
    amended = CSV.replace("Camden,2022-01,10,8", "Camden,2022-01,20,8")
    factory = db.make_session_factory(engine)
    with factory() as s:
        preview = deliveries.preview_upload(
            s, principal=STAFF, content=amended.encode(), file_name="x.csv"
        )
        s.commit()
    assert preview.count("amended") == 1
    read = deliveries.get_delivery(
        ready, principal=ADMIN, programme=OPEN, borough="Camden", month=dt.date(2022, 1, 1)
    )
    deliveries.save_delivery(
        ready,
        principal=ADMIN,
        programme=OPEN,
        borough="Camden",
        month="2022-01",
        opportunities=13,
        participants=8,
        spend_gbp="100.50",
        read=read,
    )
    ready.commit()
    before = dump(engine)
    with factory() as s:
        with pytest.raises(ConflictError, match=r"row 2 .*opportunities: 10 → 13"):
            deliveries.commit(s, principal=STAFF, preview=preview)
        s.rollback()
    assert dump(engine) == before


def test_grid_saves_changed_and_new_rows_and_refuses_stale_ones(ready, engine) -> None:
    _import(ready, CSV)
    original = deliveries.programme_grid(ready, principal=STAFF, programme=OPEN)
    assert list(original.columns) == list(deliveries.GRID_COLUMNS) and len(original) == 3
    assert original["month"].tolist() == ["2022-02", "2022-01", "2022-01"]  # newest first
    edited = original.copy()
    edited.loc[0, "opportunities"] = 30
    new_row = pd.DataFrame([["Lambeth", "2022-02", 3, pd.NA, None, pd.NA]], columns=edited.columns)
    edited = pd.concat([edited, new_row.astype(edited.dtypes.to_dict())], ignore_index=True)
    saved = deliveries.save_grid(
        ready, principal=STAFF, programme=OPEN, original=original, edited=edited
    )
    ready.commit()
    assert (saved.added, saved.amended) == (1, 1)
    # A second person still holding the original grid is refused.
    stale = original.copy()
    stale.loc[0, "opportunities"] = 99
    before = dump(engine)
    with pytest.raises(ConflictError, match=r"Chelsea, 2022-02 .*opportunities: 7 → 30"):
        deliveries.save_grid(
            ready, principal=ADMIN, programme=OPEN, original=original, edited=stale
        )
    ready.rollback()
    assert dump(engine) == before
    bad = original.copy()
    bad.loc[1, "opportunities"] = -1
    with pytest.raises(RegistryError, match="grid row 2, opportunities '-1': Negative"):
        deliveries.save_grid(ready, principal=ADMIN, programme=OPEN, original=original, edited=bad)


def test_soft_delete_keeps_the_row_with_a_reason_and_audits(ready) -> None:
    _import(ready, CSV)
    with pytest.raises(RegistryError, match="reason"):
        deliveries.delete_delivery(
            ready,
            principal=STAFF,
            programme=OPEN,
            borough="Camden",
            month=dt.date(2022, 1, 1),
            reason=" ",
        )
    deliveries.delete_delivery(
        ready,
        principal=STAFF,
        programme=OPEN,
        borough="Camden",
        month=dt.date(2022, 1, 1),
        reason="Entered twice",
        version=1,
    )
    ready.commit()
    row = ready.scalar(select(Delivery).where(Delivery.deleted_at.is_not(None)))
    assert row.deleted_reason == "Entered twice" and row.version == 2
    event = ready.scalar(select(AuditEvent).where(AuditEvent.action == "delete"))
    assert event.before["opportunities"] == 10 and event.after["deleted_reason"] == "Entered twice"
    assert "Camden" not in set(deliveries.export_frame(ready, principal=STAFF)["borough"])
    with pytest.raises(NotFoundError):
        deliveries.delete_delivery(
            ready,
            principal=STAFF,
            programme=OPEN,
            borough="Camden",
            month=dt.date(2022, 1, 1),
            reason="again",
        )
    # Recording the triple again revives the row as an amendment (the unique key is kept).
    again = _import(ready, CSV)
    assert again.count("added") == 1
    ready.refresh(row)
    assert row.deleted_at is None and row.version == 3


def test_plausibility_warns_but_does_not_block(ready) -> None:
    history = "programme,borough,month,opportunities\n" + "".join(
        f"{OPEN},Camden,2022-{m:02d},20\n" for m in range(1, 7)
    )
    _import(ready, history)
    odd = (
        "programme,borough,month,opportunities\n"
        f"{OPEN},Camden,2022-07,90\n{OPEN},Camden,2022-08,21\n"
    )
    result = _import(ready, odd)
    assert result.ok and result.count("added") == 2
    assert [w.row for w in result.warnings] == [2]
    assert "far above" in result.warnings[0].reason and "median 20" in result.warnings[0].reason
    low = f"programme,borough,month,opportunities\n{OPEN},Camden,2022-09,0\n"
    assert "far below" in _import(ready, low).warnings[0].reason


def test_signed_off_month_refuses_changes_until_reopened(ready) -> None:
    _import(ready, CSV)
    with pytest.raises(PermissionDenied):
        deliveries.sign_off_month(ready, principal=STAFF, month=dt.date(2022, 1, 1))
    deliveries.sign_off_month(ready, principal=ADMIN, month=dt.date(2022, 1, 1), note="Q4 done")
    ready.commit()
    changed = CSV.replace("Camden,2022-01,10", "Camden,2022-01,11")
    result = _import(ready, changed)
    assert not result.ok
    assert result.problems[0].row == 2 and "signed off" in result.problems[0].reason
    assert _import(ready, CSV).ok  # unchanged rows in a signed-off month are fine
    with pytest.raises(ConflictError, match="signed off"):
        deliveries.delete_delivery(
            ready,
            principal=STAFF,
            programme=OPEN,
            borough="Camden",
            month=dt.date(2022, 1, 1),
            reason="x",
        )
    deliveries.reopen_month(
        ready, principal=ADMIN, month=dt.date(2022, 1, 1), reason="Late correction"
    )
    ready.commit()
    assert _import(ready, changed).count("amended") == 1
    actions = ready.scalars(
        select(AuditEvent.action).where(AuditEvent.entity == "month_sign_off")
    ).all()
    assert sorted(actions) == ["reopen", "sign_off"]


def test_completeness_shows_missing_and_late_returns(ready) -> None:
    _import(ready, CSV)
    frame = deliveries.completeness(
        ready,
        principal=COMMISSIONER,
        start=dt.date(2022, 1, 1),
        end=dt.date(2022, 2, 1),
        today=dt.date(2022, 4, 1),
    )
    status = {(r.borough, r.month): r.status for r in frame.itertuples()}
    # Returns were recorded today, long after their due dates: late. Westminster never sent
    # February's, Camden never sent February's.
    assert status[("Camden", "2022-01")] == "late"
    assert status[("Westminster", "2022-02")] == "missing"
    assert status[("Kensington and Chelsea", "2022-02")] == "late"
    assert len(frame) == 6


def test_form_additions_are_audited_with_their_figures(ready) -> None:
    deliveries.save_delivery(
        ready,
        principal=STAFF,
        programme=OPEN,
        borough="Hackney",
        month="2022-03",
        opportunities=4,
        spend_gbp="12.5",
    )
    ready.commit()
    event = ready.scalar(
        select(AuditEvent).where(AuditEvent.action == "create", AuditEvent.entity == "delivery")
    )
    assert event.entity == "delivery" and event.actor == STAFF.username
    assert event.after["rows"] == [
        {
            "programme": OPEN,
            "borough": "Hackney",
            "month": "2022-03",
            "opportunities": 4,
            "participants": None,
            "spend_gbp": "12.50",
        }
    ]


def test_a_race_on_a_new_row_is_a_conflict_not_a_crash(ready, engine) -> None:
    """Two previews both see no row; the second commit finds the row now exists and is refused."""
    text = f"programme,borough,month,opportunities\n{OPEN},Camden,2022-01,4\n".encode()
    factory = db.make_session_factory(engine)
    with factory() as one, factory() as two:
        first = deliveries.preview_upload(one, principal=STAFF, content=text, file_name="a.csv")
        second = deliveries.preview_upload(two, principal=STAFF, content=text, file_name="a.csv")
        one.commit()
        two.commit()
        deliveries.commit(one, principal=STAFF, preview=first)
        one.commit()
        with pytest.raises(ConflictError, match="since you read it"):
            deliveries.commit(two, principal=STAFF, preview=second)
        two.rollback()
    assert len(ready.scalars(select(Delivery)).all()) == 1


def _statuses(session, today: dt.date) -> dict[tuple[str, str], str]:
    frame = deliveries.completeness(
        session,
        principal=COMMISSIONER,
        start=dt.date(2022, 1, 1),
        end=dt.date(2022, 2, 1),
        today=today,
    )
    return {(r.borough, r.month): r.status for r in frame.itertuples()}


def test_a_return_is_late_only_when_it_arrived_after_its_due_date(ready) -> None:
    january = f"programme,borough,month,opportunities\n{OPEN},Camden,2022-01,10\n"
    february = f"programme,borough,month,opportunities\n{OPEN},Camden,2022-02,10\n"
    deliveries.import_file(
        ready,
        principal=STAFF,
        content=january.encode(),
        file_name="jan.csv",
        received_on=dt.date(2022, 2, 15),  # the due date itself: on time
    )
    deliveries.import_file(
        ready,
        principal=STAFF,
        content=february.encode(),
        file_name="feb.csv",
        received_on=dt.date(2022, 3, 16),  # a day after its due date
    )
    ready.commit()
    assert deliveries.due_date(dt.date(2022, 1, 1)) == dt.date(2022, 2, 15)
    status = _statuses(ready, today=dt.date(2022, 4, 1))
    assert status == {("Camden", "2022-01"): "received", ("Camden", "2022-02"): "late"}
    # An amendment is a correction, not a new return: January stays on time.
    deliveries.import_file(
        ready, principal=STAFF, content=january.replace(",10", ",11").encode(), file_name="x.csv"
    )
    ready.commit()
    assert _statuses(ready, today=dt.date(2022, 4, 1))[("Camden", "2022-01")] == "received"
    assert deliveries.month_returns(
        ready, principal=COMMISSIONER, month=dt.date(2022, 2, 1), today=dt.date(2022, 4, 1)
    ) == {"received": 0, "late": 1, "backfilled": 0, "missing": 0, "not yet due": 0}


def test_backfilled_returns_are_labelled_not_late(ready) -> None:
    history = f"programme,borough,month,opportunities\n{OPEN},Camden,2022-01,10\n"
    deliveries.import_file(
        ready, principal=STAFF, content=history.encode(), file_name="h.csv", backfill=True
    )
    deliveries.save_delivery(  # recorded today, years after its due date: late
        ready, principal=STAFF, programme=OPEN, borough="Brent", month="2022-01", opportunities=3
    )
    ready.commit()
    status = _statuses(ready, today=dt.date.today())
    assert status[("Camden", "2022-01")] == "backfilled"
    assert status[("Brent", "2022-01")] == "late"
    frame = deliveries.completeness(
        ready, principal=COMMISSIONER, start=dt.date(2022, 1, 1), end=dt.date(2022, 1, 1)
    )
    backfilled = frame[frame["status"] == "backfilled"]
    assert backfilled["received"].isna().all()  # no arrival day is claimed for history
    batch = ready.scalar(select(ImportBatch).where(ImportBatch.file_name == "h.csv"))
    assert batch.details["backfill"] is True


def test_received_dates_in_the_future_or_before_the_month_are_refused(ready, engine) -> None:
    text = f"programme,borough,month,opportunities\n{OPEN},Camden,2022-01,10\n"
    before = dump(engine)
    for day, reason in (
        (dt.date.today() + dt.timedelta(days=1), "in the future"),
        (dt.date(2021, 12, 31), "before 2022-01"),
    ):
        for dry_run in (True, False):
            with pytest.raises(RegistryError, match=reason):
                deliveries.import_file(
                    ready,
                    principal=STAFF,
                    content=text.encode(),
                    file_name="d.csv",
                    received_on=day,
                    dry_run=dry_run,
                )
            ready.rollback()
    assert dump(engine) == before


def test_a_conflict_writes_no_import_batch(ready, engine) -> None:
    """The freshness check runs before the import batch is added, so even a caller that commits
    after catching the refusal stores nothing."""
    _import(ready, CSV)
    preview = deliveries.preview_upload(
        ready, principal=STAFF, content=CSV.replace(",10,8,", ",13,8,").encode(), file_name="b.csv"
    )
    deliveries.save_delivery(
        ready,
        principal=ADMIN,
        programme=OPEN,
        borough="Camden",
        month="2022-01",
        opportunities=12,
        read=deliveries.get_delivery(
            ready, principal=ADMIN, programme=OPEN, borough="Camden", month=dt.date(2022, 1, 1)
        ),
    )
    ready.commit()
    before = dump(engine)
    with pytest.raises(ConflictError):
        deliveries.commit(ready, principal=STAFF, preview=preview)
    ready.commit()  # what a careless caller would do
    assert dump(engine) == before
