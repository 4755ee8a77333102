"""Funder outcome summaries: the figures, built once, rendered as CSV, XLSX or PDF.

A summary covers a funding stream, a programme or the whole VRU over a period of whole months
(a financial year by default). Every figure comes from one database query here, so all three
formats agree with each other and with the registry. Participants (people) are protected at the
finest grain and every participant figure is derived from the protected cells
(:mod:`registry.reports.disclosure`); opportunities, spend and police-recorded crime counts are
not personal and are shown as recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from registry import audit, demo, numbers
from registry.auth import Principal, require, visible_funding_stream_ids
from registry.errors import NotFoundError, PermissionDenied, RegistryError
from registry.outcomes.measures import series_breaks
from registry.outcomes.sources import of_record, record_sources
from registry.periods import (
    Window,
    add_months,
    as_date,
    financial_year_label,
    financial_year_start,
    format_month,
    last_complete_month,
    quarter_label,
)
from registry.programmes import find_named
from registry.reports.disclosure import TOTAL, Participants, threshold_for
from registry.schema import (
    Borough,
    Delivery,
    FundingStream,
    ImportBatch,
    OutcomeCount,
    OutcomeMeasure,
    Programme,
)
from registry.windows import part_stored, whole_only

VRU_MEASURES = ("homicide", "knife_crime_injury_u25", "gun_crime")
HEADLINE_MEASURES = ("knife_crime_injury_u25", "homicide", "gun_crime")  # first with data wins
HEADLINE_COLUMNS = [
    "verdict",
    "verdict_text",
    "model",
    "outcome",
    "term",
    "change_pct",
    "ci_low_pct",
    "ci_high_pct",
    "p_value",
    "minimum_detectable_pct",
    "n_obs",
    "n_areas",
    "n_periods",
    "fitted_to",
    "explanation",
]
_SHORT = {"month": "month", "quarter": "quarter", "financial_year": "fy"}  # sheet names <= 31


@dataclass(frozen=True)
class Scope:
    """What a summary covers: one funding stream, one programme, or everything (``kind='all'``)."""

    kind: str  # "funding_stream" | "programme" | "all"
    name: str | None = None

    def title(self) -> str:
        if self.kind == "all":
            return "All VRU programmes"
        noun = "Funding stream" if self.kind == "funding_stream" else "Programme"
        return f"{noun}: {self.name}"

    def required_name(self) -> str:
        """The funding stream's or programme's name, which a scope of one must have."""
        if self.name is None:
            raise RegistryError(f"Name the {self.kind.replace('_', ' ')} to summarise.")
        return self.name


@dataclass
class Report:
    """Everything a summary shows. ``tables`` are tidy frames, in the order they are shown."""

    scope: Scope
    window: Window
    granularity: str
    data_version: int
    synthetic: bool
    threshold: int
    programmes: list[str]
    boroughs_reached: list[str]
    headline: dict[str, object]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    participants: Participants | None = None
    notes: list[str] = field(default_factory=list)

    def file_stem(self) -> str:
        name = (self.scope.name or "all-vru").lower()
        slug = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")
        start, end = format_month(self.window.start), format_month(self.window.end)
        return f"vru-summary-{slug}-{start}-to-{end}"


def _delivery_range(
    session: Session, programme_ids: list[int] | None
) -> tuple[dt.date, dt.date] | None:
    """The first and last months of the live deliveries of these programmes (``None``: all),
    up to the last complete month: a month still running (or in the future) is no data yet."""
    stmt = select(func.min(Delivery.month), func.max(Delivery.month)).where(
        Delivery.deleted_at.is_(None), Delivery.month <= last_complete_month()
    )
    if programme_ids is not None:
        stmt = stmt.where(Delivery.programme_id.in_(programme_ids))
    first, last = session.execute(stmt).one()
    if first is None or last is None:
        return None
    first = first if isinstance(first, dt.date) else dt.date.fromisoformat(str(first)[:10])
    last = last if isinstance(last, dt.date) else dt.date.fromisoformat(str(last)[:10])
    return first, last


def default_window(session: Session, programme_ids: list[int] | None = None) -> Window:
    """The latest complete financial year with these programmes' deliveries: one that is over
    and has deliveries recorded to its last month or beyond (months to come never count); the
    latest year with any deliveries when no year is complete.

    Worked out from the summarised programmes only: a funder's default period must not reveal
    when other funders' programmes delivered.
    """
    stmt = select(Delivery.month).distinct()
    stmt = stmt.where(Delivery.deleted_at.is_(None), Delivery.month <= last_complete_month())
    if programme_ids is not None:
        stmt = stmt.where(Delivery.programme_id.in_(programme_ids))
    months = [as_date(m) for m in session.scalars(stmt)]
    if not months:
        raise RegistryError("There are no deliveries to summarise yet.")
    last = max(months)
    # Complete: over, with deliveries recorded to its last month or beyond.
    complete = [
        y for y in {financial_year_start(m) for m in months} if dt.date(y + 1, 3, 1) <= last
    ]
    start_year = max(complete) if complete else financial_year_start(last)
    return Window(dt.date(start_year, 4, 1), dt.date(start_year + 1, 3, 1))


def _not_yours(principal: Principal, kind: str, name: str | None) -> str:
    return (
        f"{principal.username} has no {kind} called {name!r}; a funder sees summaries of its "
        "own funding streams only."
    )


def _programmes(session: Session, principal: Principal, scope: Scope) -> list[Programme]:
    visible = visible_funding_stream_ids(session, principal)
    stmt = select(Programme).join(FundingStream).order_by(Programme.name)
    # A funder asking for a stream or programme that is not theirs gets the same answer whether
    # or not it exists, so other funders' names cannot be found out by guessing.
    if scope.kind == "funding_stream":
        stream = find_named(session, FundingStream, scope.required_name())
        if visible is not None and (stream is None or stream.id not in visible):
            raise PermissionDenied(_not_yours(principal, "funding stream", scope.name))
        if stream is None:
            raise NotFoundError(f"There is no funding stream called {scope.name!r}.")
        stmt = stmt.where(Programme.funding_stream_id == stream.id)
    elif scope.kind == "programme":
        programme = find_named(session, Programme, scope.required_name())
        hidden = programme is None or programme.funding_stream_id not in (visible or ())
        if visible is not None and hidden:
            raise PermissionDenied(_not_yours(principal, "programme", scope.name))
        if programme is None:
            raise NotFoundError(f"There is no programme called {scope.name!r}.")
        stmt = stmt.where(Programme.id == programme.id)
    elif scope.kind == "all":
        if visible is not None:
            raise PermissionDenied(
                "A funder account sees summaries of its own funding streams; choose one."
            )
    else:
        raise RegistryError(f"Unknown summary scope {scope.kind!r}.")
    return list(session.scalars(stmt))


def _period_label(month: dt.date, granularity: str) -> str:
    if granularity == "quarter":
        return quarter_label(month)
    if granularity == "financial_year":
        return financial_year_label(month)
    return format_month(month)


def _delivery_rows(session: Session, programme_ids: list[int], window: Window) -> pd.DataFrame:
    """One row per delivery (programme, borough, month): the finest grain, which disclosure
    control protects before anything is added up."""
    stmt: Select = (
        select(
            Delivery.programme_id,
            Borough.name.label("borough"),
            Borough.gss_code.label("gss_code"),
            Delivery.month,
            func.sum(Delivery.opportunities).label("opportunities"),
            func.sum(Delivery.participants).label("participants"),
            func.sum(Delivery.spend_gbp).label("spend_gbp"),
            func.sum(
                case((Delivery.spend_gbp.is_not(None), Delivery.opportunities), else_=0)
            ).label("opportunities_with_spend"),
        )
        .join(Borough, Borough.id == Delivery.borough_id)
        .where(
            Delivery.deleted_at.is_(None),
            Delivery.programme_id.in_(programme_ids),
            Delivery.month.between(window.start, window.end),
        )
        .group_by(Delivery.programme_id, Borough.name, Borough.gss_code, Delivery.month)
    )
    frame = pd.DataFrame(
        session.execute(stmt).all(),
        columns=[
            "programme_id",
            "borough",
            "gss_code",
            "month",
            "opportunities",
            "participants",
            "spend_gbp",
            "opportunities_with_spend",
        ],
    )
    frame["month"] = pd.to_datetime(frame["month"]).dt.date
    for column in ("opportunities", "participants", "opportunities_with_spend"):
        frame[column] = pd.to_numeric(frame[column])
    frame["spend_gbp"] = pd.to_numeric(frame["spend_gbp"].astype(object)).astype(float)
    frame["participants"] = frame["participants"].astype(float)
    return frame


def _cost(spend: float, opportunities: float) -> float | None:
    return round(spend / opportunities, 2) if opportunities else None


def _by(frame: pd.DataFrame, key: str, participants: pd.DataFrame) -> pd.DataFrame:
    grouped = frame.groupby(key, sort=True).agg(
        opportunities=("opportunities", "sum"),
        spend_gbp=("spend_gbp", lambda s: s.sum(min_count=1)),
        opportunities_with_spend=("opportunities_with_spend", "sum"),
    )
    grouped.loc[TOTAL] = [
        grouped["opportunities"].sum(),
        grouped["spend_gbp"].sum(min_count=1),
        grouped["opportunities_with_spend"].sum(),
    ]
    out = pd.DataFrame(
        {
            key: grouped.index,
            "opportunities": grouped["opportunities"].astype(int).to_numpy(),
            **{c: participants[c].reindex(grouped.index).to_numpy() for c in participants.columns},
            "spend_gbp": [None if pd.isna(v) else round(float(v), 2) for v in grouped["spend_gbp"]],
            "cost_per_opportunity_gbp": [
                None if pd.isna(s) else _cost(float(s), float(o))
                for s, o in zip(
                    grouped["spend_gbp"], grouped["opportunities_with_spend"], strict=True
                )
            ],
        }
    )
    return out


OUTCOME_COLUMNS = [
    "measure",
    "unit",
    "current_start",
    "current_end",
    "current_count",
    "current_months_with_data",
    "baseline_start",
    "baseline_end",
    "baseline_count",
    "baseline_months_with_data",
    "change_pct",
    "change_note",  # why no change is given, when a window is not whole
    "series_breaks",  # breaks in the series between the baseline's start and the period's end
]


def _outcomes(session: Session, borough_codes: list[str], window: Window) -> pd.DataFrame:
    """The VRU's outcome measures in the boroughs reached: this window against a year earlier.

    With no borough reached there is nothing to compare: no rows, rather than rows reading as if
    no counts were loaded.
    """
    baseline = Window(add_months(window.start, -12), add_months(window.end, -12))
    rows = []
    measures: Iterable[OutcomeMeasure] = (
        session.scalars(
            select(OutcomeMeasure)
            .where(OutcomeMeasure.code.in_(VRU_MEASURES))
            .order_by(OutcomeMeasure.id)
        )
        if borough_codes
        else []
    )
    for measure in measures:
        figures = {}
        for name, w in (("current", window), ("baseline", baseline)):
            count, months = session.execute(
                select(
                    func.coalesce(func.sum(OutcomeCount.count), 0),
                    func.count(func.distinct(OutcomeCount.month)),
                )
                .join(Borough, Borough.id == OutcomeCount.borough_id)
                .where(
                    of_record(session, OutcomeCount, measure.id),
                    Borough.gss_code.in_(borough_codes),
                    OutcomeCount.month.between(w.start, w.end),
                )
            ).one()
            # A window with no stored month has no count (not a count of 0: nothing is known).
            figures[name] = (int(count) if months else None, int(months))
        (current, current_months), (baseline_count, baseline_months) = (
            figures["current"],
            figures["baseline"],
        )
        # Only whole windows are compared (registry.windows): a part-stored one reads as a fall.
        stored = [
            (window.start, window.end, current_months),
            (baseline.start, baseline.end, baseline_months),
        ]
        change = whole_only(
            round((current - baseline_count) / baseline_count * 100, 1)
            if current is not None and baseline_count
            else None,
            stored,
        )
        rows.append(
            {
                "measure": measure.label,
                "unit": measure.unit,
                "current_start": format_month(window.start),
                "current_end": format_month(window.end),
                "current_count": current,
                "current_months_with_data": current_months,
                "baseline_start": format_month(baseline.start),
                "baseline_end": format_month(baseline.end),
                "baseline_count": baseline_count,
                "baseline_months_with_data": baseline_months,
                "change_pct": change,
                "change_note": " ".join(part_stored(stored)),
                "series_breaks": "; ".join(
                    f"{format_month(b.month)}: {b.note}"
                    for b in series_breaks(session, measure.code, baseline.start, window.end)
                ),
            }
        )
    frame = pd.DataFrame(rows, columns=OUTCOME_COLUMNS)
    return frame.astype({"current_count": "Int64", "baseline_count": "Int64"})


SOURCE_COLUMNS = [
    "batch",
    "kind",
    "format",
    "file",
    "release",
    "loaded_at",
    "rows",
    "sha256",
    "synthetic",
]


def _sources(session: Session, programme_ids: list[int]) -> pd.DataFrame:
    """The loads behind the summary: outcome and population data, and the scope's deliveries.

    Other programmes' uploads and the names of the people who loaded files are left out: a
    summary may be forwarded outside the VRU. An upload that also carried other programmes'
    figures is listed without its file name, fingerprint or size (:func:`_shared_uploads`).
    """
    delivery_batches = select(Delivery.import_batch_id).where(
        Delivery.programme_id.in_(programme_ids), Delivery.import_batch_id.is_not(None)
    )
    batches = list(
        session.scalars(
            select(ImportBatch)
            .where(
                ImportBatch.kind.in_(("crime", "population", "seed"))
                | ImportBatch.id.in_(delivery_batches)
            )
            .order_by(ImportBatch.id)
        )
    )
    shared = _shared_uploads(session, programme_ids, [b for b in batches if b.kind == "deliveries"])
    return pd.DataFrame(
        [
            {
                "batch": b.id,
                "kind": b.kind,
                "format": b.format,
                "file": SHARED_UPLOAD if b.id in shared else b.file_name,
                "release": b.release_label,
                "loaded_at": b.created_at.strftime("%Y-%m-%d %H:%M UTC") if b.created_at else None,
                "rows": shared.get(b.id, b.rows_accepted),
                "sha256": None if b.id in shared else b.sha256,
                "synthetic": b.synthetic,
            }
            for b in batches
        ],
        columns=SOURCE_COLUMNS,
    )


SHARED_UPLOAD = "(an upload that also held other programmes' figures)"


def _shared_uploads(
    session: Session, programme_ids: list[int], batches: list[ImportBatch]
) -> dict[int, int]:
    """The delivery uploads that carried figures of programmes outside ``programme_ids``, with
    the number of this scope's rows each set: their file names (often another funder's or
    partner's) and sizes are not this summary's to show.

    An upload records its programmes (``details["programmes"]``); an older one that does not is
    treated as shared unless every row it set is still this scope's.
    """
    if not batches:
        return {}
    ids = [b.id for b in batches]
    mine = dict(
        session.execute(
            select(Delivery.import_batch_id, func.count())
            .where(Delivery.import_batch_id.in_(ids), Delivery.programme_id.in_(programme_ids))
            .group_by(Delivery.import_batch_id)
        )
        .tuples()
        .all()
    )
    scope = set(programme_ids)
    shared = {}
    for batch in batches:
        recorded = (batch.details or {}).get("programmes")
        whole = (
            set(recorded) <= scope
            if recorded is not None
            else mine.get(batch.id, 0) == batch.rows_accepted
        )
        if not whole:
            shared[batch.id] = mine.get(batch.id, 0)
    return shared


def headline_model(
    session: Session, scope: Scope, window: Window
) -> tuple[pd.DataFrame, list[str]]:
    """The headline model (Poisson, borough and month effects) for the scope's delivery, fitted
    up to the period's end.

    Runs after the caller's scope check, on behalf of the registry (a funder may read this
    result for their own streams without the right to run models at will). Returns the one-row
    table and the model's caveats; a model that cannot be fitted says why instead. The verdict
    comes first, and a result whose own checks fail is never given as a finding: its
    explanation is the verdict alone.
    """
    from registry.analysis.headline import UNIT
    from registry.analysis.result import NOT_INTERPRETABLE
    from registry.analysis.run import HEADLINE, model_series_breaks, run_model
    from registry.auth import SYSTEM

    available = set(
        session.scalars(
            select(OutcomeMeasure.code).where(OutcomeMeasure.id.in_(list(record_sources(session))))
        )
    )
    measure = next((m for m in HEADLINE_MEASURES if m in available), None)
    if measure is None:
        return pd.DataFrame(columns=HEADLINE_COLUMNS), [
            "No outcome counts are loaded, so no model was fitted."
        ]
    try:
        result = run_model(
            session,
            principal=SYSTEM,
            outcome=measure,
            model=HEADLINE,
            lag=1,
            end=window.end,
            programme=scope.name if scope.kind == "programme" else None,
            funding_stream=scope.name if scope.kind == "funding_stream" else None,
        )
    except RegistryError as exc:
        reason = f"The headline model could not be fitted: {exc}"
        return pd.DataFrame(columns=HEADLINE_COLUMNS), [reason]
    label = session.scalar(select(OutcomeMeasure.label).where(OutcomeMeasure.code == measure))
    unit = result.extra["rate_unit"]
    effect = result.extra["effect"]
    explanation = result.verdict_text
    if result.verdict != NOT_INTERPRETABLE:
        explanation += (
            f" Each extra {UNIT} opportunities per 1,000 young people in a month went with a "
            f"change of {numbers.change(effect['value'])} in the next month's rate {unit} "
            f"(95% interval {numbers.change(effect['ci_low'])} to "
            f"{numbers.change(effect['ci_high'])}), "
            "comparing each borough with itself over time and allowing for London-wide changes; "
            f"changes smaller than about {numbers.percent(effect['mde_fall'])} could not be "
            "reliably detected."
        )
    frame = pd.DataFrame(
        [
            {
                "verdict": result.verdict,
                "verdict_text": result.verdict_text,
                "model": "Poisson with borough and month effects, wild bootstrap by borough",
                "outcome": f"{label} {unit}",
                "term": f"per extra {UNIT} opportunities per 1,000 aged 10-24, previous month",
                "change_pct": round(effect["value"], 1),
                "ci_low_pct": round(effect["ci_low"], 1),
                "ci_high_pct": round(effect["ci_high"], 1),
                "p_value": round(result.p_value, 4),
                "minimum_detectable_pct": round(effect["mde_fall"], 1),
                "n_obs": result.n_obs,
                "n_areas": result.n_areas,
                "n_periods": result.n_periods,
                "fitted_to": format_month(window.end),
                "explanation": explanation,
            }
        ],
        columns=HEADLINE_COLUMNS,
    )
    breaks = model_series_breaks(session, principal=SYSTEM, outcome=measure, end=window.end)
    return frame, [*result.caveats, *(b.sentence() for b in breaks)]


def build_report(
    session: Session,
    *,
    principal: Principal,
    scope: Scope,
    window: Window | None = None,
    granularity: str = "month",
    threshold: int | None = None,
) -> Report:
    """Build the summary ``principal`` may see for ``scope`` over ``window``."""
    require(principal, "reports.read")
    if granularity not in ("month", "quarter", "financial_year"):
        raise RegistryError("Choose month, quarter or financial_year for the periods.")
    # Who may see what comes first: a funder asking for everything is told to choose a stream
    # of theirs, whatever state the registry is in.
    programmes = _programmes(session, principal, scope)
    if not programmes:
        if scope.kind == "all":
            raise RegistryError("There are no programmes to summarise yet.")
        raise RegistryError(f"{scope.title()} has no programmes to summarise.")
    if scope.kind != "all":  # titled with the stored name, however the name was typed
        named = programmes[0] if scope.kind == "programme" else programmes[0].funding_stream
        scope = Scope(scope.kind, named.name)
    window = window or default_window(session, [p.id for p in programmes])
    window.check()
    asked = window
    window = Window(window.start, min(window.end, last_complete_month()))  # no future months
    if window.end < window.start:
        raise RegistryError(
            f"The period {asked.label()} has not begun: the last complete month is "
            f"{format_month(window.end)}."
        )
    recorded = _delivery_range(session, [p.id for p in programmes])
    threshold = threshold_for(principal, threshold)
    rows = _delivery_rows(session, [p.id for p in programmes], window)
    if not rows["opportunities"].sum():
        # Refused here, not by each caller, so the CLI and the Downloads page say the same.
        raise RegistryError(f"{scope.title()} delivered nothing in {window.label()}.")
    rows["period"] = [_period_label(m, granularity) for m in rows["month"]]
    participants = Participants.of(rows, threshold)
    by_borough = _by(rows, "borough", participants.by("borough"))
    codes = rows.drop_duplicates("borough").set_index("borough")["gss_code"]
    by_borough.insert(1, "gss_code", [codes.get(b, "") for b in by_borough["borough"]])
    by_period = _by(rows, "period", participants.by("period"))
    crosstab_shown = participants.crosstab()
    reached = sorted(rows.loc[rows["opportunities"] > 0, "borough"].unique())
    outcomes = _outcomes(session, [codes[b] for b in reached], window)
    model_table, model_caveats = headline_model(session, scope, window)
    crossed = [
        f"{m}: series break inside the compared periods ({b})."
        for m, b in zip(outcomes["measure"], outcomes["series_breaks"], strict=True)
        if b
    ]

    total = by_borough.iloc[-1]
    version = audit.data_version(session)
    headline: dict[str, object] = {
        "scope": scope.title(),
        "period": window.label(),
        "programmes": len(programmes),
        "opportunities": int(total["opportunities"]),
        "participants": total["participants"],
        "spend_gbp": total["spend_gbp"],
        "cost_per_opportunity_gbp": total["cost_per_opportunity_gbp"],
        "boroughs_reached": len(reached),
        "data_version": version,
    }
    synthetic = demo.is_synthetic(session)
    names = [p.name for p in programmes]
    return Report(
        scope=scope,
        window=window,
        granularity=granularity,
        data_version=version,
        synthetic=synthetic,
        threshold=threshold,
        programmes=names,
        boroughs_reached=reached,
        headline=headline,
        participants=participants,
        tables={
            "summary": pd.DataFrame({"item": list(headline), "value": list(headline.values())}),
            "delivery_by_borough": by_borough,
            f"delivery_by_{granularity}": by_period,
            f"participants_by_borough_{_SHORT[granularity]}": crosstab_shown,
            "outcomes": outcomes,
            "headline_model": model_table,
            "programmes": pd.DataFrame({"programme": names}),
            "sources": _sources(session, [p.id for p in programmes]),
        },
        notes=[
            *_notes(scope, asked, window, recorded, version, synthetic, participants),
            *(
                f"{line} Counts before and after it are not strictly comparable."
                for line in crossed
            ),
            "Headline model caveats: " + " ".join(model_caveats),
        ],
    )


def period_words(asked: Window, window: Window, recorded: tuple[dt.date, dt.date] | None) -> str:
    """How whole the summary's period is, in words: "12 whole months" only when every month
    has ended and the scope's deliveries are recorded to the period's end."""
    cut = (
        f", cut at {format_month(window.end)}, the last complete month, from {asked.label()}"
        if window != asked
        else ""
    )
    last = recorded[1] if recorded else None
    if not cut and last is not None and last >= window.end:
        return f"{window.label()} ({window.months} whole months)"
    held = (
        f"deliveries are recorded to {format_month(last)}"
        if last is not None
        else "no deliveries are recorded"
    )
    part = " so the period is not whole" if last is None or last < window.end else ""
    return f"{window.label()} ({window.months} months{cut}; {held}{',' if part else ''}{part})"


def _notes(
    scope: Scope,
    asked: Window,
    window: Window,
    recorded: tuple[dt.date, dt.date] | None,
    version: int,
    synthetic: bool,
    participants: Participants,
) -> list[str]:
    notes = []
    if synthetic:
        notes.append(f"{demo.SYNTHETIC_NOTE} Do not use these figures for any decision.")
    notes += [
        f"Summary of {scope.title()}, {period_words(asked, window, recorded)}, built "
        f"from registry data version {version}. Rebuilding it from the same data gives "
        "identical files.",
        "Opportunities: positive opportunities delivered (one young person may take several). "
        "Participants: young people taking part, where partners recorded it (blank when not "
        "recorded).",
        participants.note(),
        "Spend and cost per opportunity cover only the deliveries whose spend was recorded.",
        "Outcomes: police-recorded counts in the boroughs the programmes reached, for the same "
        "months as the summary and for the same months a year earlier (the baseline). They are "
        "borough counts only (London's unallocated counts belong to no borough).",
        "Association is not causation: outcomes move for many reasons, and programmes are "
        "targeted where violence is high, so falls partly reflect regression to the mean. "
        "Small counts (homicide especially) vary a lot by chance from year to year.",
    ]
    return notes


@dataclass(frozen=True)
class ReportChoices:
    """What ``principal`` may summarise, for the Downloads page."""

    funding_streams: list[str]
    programmes: list[str]
    allow_all: bool
    financial_years: list[str]  # newest first, none after the last complete month
    default_year: str | None = None  # the latest complete one (default_window)


def report_choices(session: Session, *, principal: Principal) -> ReportChoices:
    visible = visible_funding_stream_ids(session, principal)
    streams = select(FundingStream.name).order_by(FundingStream.name)
    programmes = select(Programme.name).order_by(Programme.name)
    if visible is not None:
        streams = streams.where(FundingStream.id.in_(visible))
        programmes = programmes.where(Programme.funding_stream_id.in_(visible))
    # The years the principal's own programmes delivered in, not the whole registry's.
    visible_programmes = (
        None
        if visible is None
        else list(
            session.scalars(select(Programme.id).where(Programme.funding_stream_id.in_(visible)))
        )
    )
    found = _delivery_range(session, visible_programmes)
    years: list[str] = []
    default = None
    if found is not None:
        first, last = found
        years = [
            f"{y}-{(y + 1) % 100:02d}"
            for y in range(financial_year_start(last), financial_year_start(first) - 1, -1)
        ]
        default = financial_year_label(default_window(session, visible_programmes).start)
    return ReportChoices(
        funding_streams=list(session.scalars(streams)),
        programmes=list(session.scalars(programmes)),
        allow_all=visible is None,
        financial_years=years,
        default_year=default,
    )
