"""Synthetic demo data: a deterministic generator and the loader behind ``vru seed``.

Everything here is invented. The figures have a realistic size (about 100-150 homicides a year
across London, falling after 2019; 1.58 million people aged 10-24) so the pages and models have
something true-to-scale to show, but no figure describes a real programme or a real place's crime.
Every page that shows this data says so (the loader marks its import batches ``synthetic``).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from registry import audit
from registry.auth import Principal, write_action
from registry.boroughs import BOROUGHS, borough_ids
from registry.bundled import bundled
from registry.errors import ConflictError, RegistryError
from registry.periods import add_months, format_month, month_range, parse_month
from registry.schema import (
    Delivery,
    FundingStream,
    ImportBatch,
    OutcomeCount,
    OutcomeMeasure,
    OutcomeRevision,
    Population,
    Programme,
    UnallocatedCount,
)

SEED_DIR = bundled("seed")
DEFAULT_SEED = 20190901
DELIVERY_START = dt.date(2016, 4, 1)
OUTCOME_START = dt.date(2015, 1, 1)
DEMO_END = dt.date(2026, 9, 1)
POPULATION_YEARS = range(2015, 2027)
AGE_BAND = "10-24"
# The measures' bands, scaled from the 10-24 figures by London's mid-2020 ratios (about 9.0
# million residents and 2.6 million aged 1-24 to 1.58 million aged 10-24): demo figures only.
BAND_RATIOS: dict[str, float] = {AGE_BAND: 1.0, "1-24": 1.66, "all ages": 5.69}
SYNTHETIC_NOTE = "Synthetic demo data: invented figures, not real programmes or real crime."

# ONS mid-2020 estimates of people aged 10-24 (FORMATS.md), London 1,581,803.
POPULATION_2020: dict[str, int] = {
    "E09000001": 1_981,
    "E09000002": 43_859,
    "E09000003": 69_721,
    "E09000004": 43_540,
    "E09000005": 59_994,
    "E09000006": 52_762,
    "E09000007": 54_856,
    "E09000008": 68_295,
    "E09000009": 59_376,
    "E09000010": 61_750,
    "E09000011": 50_890,
    "E09000012": 47_042,
    "E09000013": 33_149,
    "E09000014": 46_656,
    "E09000015": 42_392,
    "E09000016": 43_941,
    "E09000017": 57_125,
    "E09000018": 46_590,
    "E09000019": 50_547,
    "E09000020": 25_161,
    "E09000021": 32_480,
    "E09000022": 53_067,
    "E09000023": 50_519,
    "E09000024": 32_475,
    "E09000025": 67_832,
    "E09000026": 57_187,
    "E09000027": 31_696,
    "E09000028": 54_333,
    "E09000029": 34_259,
    "E09000030": 65_801,
    "E09000031": 45_956,
    "E09000032": 49_951,
    "E09000033": 46_620,
}

FUNDING_STREAMS: tuple[tuple[str, str], ...] = (
    ("VRU Core Programme Fund", "City Hall"),
    ("Young Londoners Fund", "City Hall"),
    ("Serious Violence Fund", "Home Office"),
    ("Youth Futures Trust Grant", "Youth Futures Trust"),
    ("Health Partnership Fund", "NHS London"),
)

# name, partner, funding stream, intervention type, ages, start, end, mean per borough-month,
# share of boroughs reached, cost per opportunity in pounds
PROGRAMMES: tuple[tuple[str, str, str, str, int, int, str, str, float, float, int], ...] = (
    (
        "Hospital Youth Workers",
        "Bridgeway Trust",
        "Health Partnership Fund",
        "hospital-based youth work",
        11,
        24,
        "2016-04-01",
        "",
        14,
        0.5,
        180,
    ),
    (
        "Street Mentors",
        "Northgate Mentoring",
        "VRU Core Programme Fund",
        "mentoring",
        10,
        21,
        "2019-09-01",
        "",
        30,
        0.7,
        120,
    ),
    (
        "After-School Sport Leagues",
        "Playfair Sport",
        "Young Londoners Fund",
        "sport",
        10,
        18,
        "2016-09-01",
        "",
        55,
        0.8,
        35,
    ),
    (
        "Parenting Together",
        "Family Circle",
        "VRU Core Programme Fund",
        "parenting",
        10,
        17,
        "2019-11-01",
        "",
        12,
        0.5,
        210,
    ),
    (
        "Inclusion in Schools",
        "Learning Without Limits",
        "Serious Violence Fund",
        "school inclusion",
        11,
        16,
        "2020-01-01",
        "",
        40,
        0.6,
        90,
    ),
    (
        "Summer Nights Youth Clubs",
        "Open Doors Youth",
        "Young Londoners Fund",
        "youth work",
        12,
        19,
        "2017-04-01",
        "",
        45,
        0.9,
        25,
    ),
    (
        "Custody Navigators",
        "Second Chance Partnership",
        "Serious Violence Fund",
        "custody intervention",
        14,
        24,
        "2020-06-01",
        "",
        8,
        0.4,
        260,
    ),
    (
        "Knife Awareness Workshops",
        "Sharp Minds",
        "VRU Core Programme Fund",
        "education",
        11,
        18,
        "2019-10-01",
        "",
        35,
        0.7,
        20,
    ),
    (
        "Music and Media Academy",
        "Soundstage Collective",
        "Youth Futures Trust Grant",
        "arts",
        13,
        24,
        "2018-01-01",
        "",
        20,
        0.4,
        70,
    ),
    (
        "Trusted Adult Network",
        "Northgate Mentoring",
        "Youth Futures Trust Grant",
        "mentoring",
        10,
        18,
        "2021-04-01",
        "",
        18,
        0.5,
        140,
    ),
    (
        "Family Support Hubs",
        "Family Circle",
        "Health Partnership Fund",
        "parenting",
        10,
        24,
        "2022-04-01",
        "",
        15,
        0.4,
        160,
    ),
    (
        "Boxing for Change",
        "Ringside Community",
        "VRU Core Programme Fund",
        "sport",
        12,
        24,
        "2019-09-01",
        "2023-03-31",
        25,
        0.3,
        45,
    ),
)

# Yearly London totals in 2019 and the size of each series' fall after it.
MEASURE_LEVELS: dict[str, tuple[float, float]] = {
    "homicide": (150.0, 0.23),
    "knife_crime_injury_u25": (1_800.0, 0.25),
    "gun_crime": (1_900.0, 0.25),
}
# Share of London's count the publisher places in no borough, by source area.
UNALLOCATED_SHARES: dict[str, float] = {
    "Unknown": 0.008,
    "London Heathrow and London City Airports": 0.003,
}
# Association planted for the models to find: each extra opportunity per 1,000 young people in
# the previous month lowers the expected count by about 1.5%.
PLANTED_EFFECT = -0.015

# Accounts `make run` creates beside the demo data, one per role (stated in the README).
DEMO_USERS: tuple[tuple[str, str, str | None, str], ...] = (
    ("admin", "admin", None, "admin-demo-password"),
    ("staff", "staff", None, "staff-demo-password"),
    ("commissioner", "commissioner", None, "commissioner-demo-password"),
    ("funder", "funder", "City Hall", "funder-demo-password"),
)

FILES = (
    "funding_streams.csv",
    "programmes.csv",
    "deliveries.csv",
    "outcomes.csv",
    "unallocated.csv",
    "population.csv",
)


def _year_trend(month: dt.date, fall: float) -> float:
    """Level relative to 2019: a gentle rise to a 2019 peak, then the reported fall by 2024."""
    t = month.year + (month.month - 1) / 12
    if t < 2019.5:
        return 0.88 + 0.12 * (t - 2015) / 4.5
    return 1 - fall * min(1.0, (t - 2019.5) / 4.5)


def _season(month: dt.date) -> float:
    return 1 + 0.10 * math.cos(2 * math.pi * (month.month - 7) / 12)


def _write(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def generate(out_dir: Path = SEED_DIR, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write the demo CSV files to ``out_dir``; the same seed always gives the same bytes."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    codes = [b.gss_code for b in BOROUGHS]
    # Relative risk of violence: higher in inner London, varied between boroughs.
    risk = {
        b.gss_code: float(np.exp(rng.normal(0.35 if b.inner_london else -0.2, 0.3)))
        for b in BOROUGHS
    }
    growth = {c: float(rng.normal(0.006, 0.004)) for c in codes}
    population = {
        (c, year): round(POPULATION_2020[c] * (1 + growth[c]) ** (year - 2020))
        for c in codes
        for year in POPULATION_YEARS
    }

    _write(out_dir / "funding_streams.csv", ("name", "funder"), FUNDING_STREAMS)
    _write(
        out_dir / "programmes.csv",
        (
            "name",
            "partner",
            "funding_stream",
            "intervention_type",
            "age_min",
            "age_max",
            "start_date",
            "end_date",
        ),
        (p[:8] for p in PROGRAMMES),
    )

    delivery_rows: list[tuple[str, str, str, int, int | str, str]] = []
    opportunities: dict[tuple[str, dt.date], int] = {}
    for name, _p, _f, _t, _a, _b, start, end, mean, reach, cost in PROGRAMMES:
        # Programmes are targeted where violence is high: the riskiest boroughs are reached first.
        weights = np.array([risk[c] for c in codes[1:]])
        n_reached = max(3, round(reach * 32))
        reached = list(
            rng.choice(codes[1:], size=n_reached, replace=False, p=weights / weights.sum())
        )
        if rng.random() < 0.3:
            reached.append("E09000001")
        first = max(DELIVERY_START, dt.date.fromisoformat(start).replace(day=1))
        last = min(DEMO_END, dt.date.fromisoformat(end).replace(day=1)) if end else DEMO_END
        for code in sorted(reached):
            joined = add_months(first, int(rng.integers(0, 18)))
            size = mean * risk[code] ** 0.5 * POPULATION_2020[code] / 50_000
            for month in month_range(joined, last):
                ramp = min(1.0, 0.4 + 0.1 * (len(month_range(joined, month))))
                value = int(rng.poisson(size * ramp * (0.7 if month.month == 8 else 1.0)))
                participants: int | str = int(rng.binomial(value, 0.75)) if value else 0
                spend = ""
                if rng.random() < 0.7:
                    spend = f"{value * cost * rng.uniform(0.8, 1.2):.2f}"
                if rng.random() < 0.1:
                    participants = ""
                delivery_rows.append((name, code, format_month(month), value, participants, spend))
                opportunities[(code, month)] = opportunities.get((code, month), 0) + value
    _write(
        out_dir / "deliveries.csv",
        ("programme", "borough", "month", "opportunities", "participants", "spend_gbp"),
        delivery_rows,
    )

    outcome_rows: list[tuple[str, str, str, int]] = []
    unallocated_rows: list[tuple[str, str, str, int]] = []
    months = month_range(OUTCOME_START, DEMO_END)
    met_codes = codes[1:]  # The Met does not police the City of London: no City counts.
    total_weight = sum(risk[c] * POPULATION_2020[c] for c in met_codes)
    for measure, (level, fall) in MEASURE_LEVELS.items():
        for month in months:
            london_mean = level / 12 * _year_trend(month, fall) * _season(month)
            for code in met_codes:
                young = population[(code, month.year)]
                rate = opportunities.get((code, add_months(month, -1)), 0) / young * 1000
                mean = london_mean * risk[code] * POPULATION_2020[code] / total_weight
                count = int(rng.poisson(mean * math.exp(PLANTED_EFFECT * rate)))
                outcome_rows.append((measure, code, format_month(month), count))
            if measure != "homicide":
                for area, share in UNALLOCATED_SHARES.items():
                    count = int(rng.poisson(london_mean * share))
                    unallocated_rows.append((measure, area, format_month(month), count))
    _write(out_dir / "outcomes.csv", ("measure", "borough", "month", "count"), outcome_rows)
    _write(
        out_dir / "unallocated.csv", ("measure", "source_area", "month", "count"), unallocated_rows
    )
    _write(
        out_dir / "population.csv",
        ("borough", "year", "age_band", "people"),
        (
            (c, y, band, round(population[(c, y)] * ratio))
            for band, ratio in BAND_RATIOS.items()
            for c in codes
            for y in POPULATION_YEARS
        ),
    )
    return [out_dir / name for name in FILES]


# --- loading -----------------------------------------------------------------------------------


def _read(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        raise RegistryError(
            f"Demo data file {path} is missing; regenerate it with `python seed/generate.py`."
        )
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@write_action("users.manage")
def add_demo_users(session: Session, *, principal: Principal) -> list[str]:
    """Create the demo accounts that do not exist yet; returns the names created."""
    from registry.auth import add_user
    from registry.schema import AppUser

    existing = set(session.scalars(select(AppUser.username)))
    created = []
    for username, role, funder, password in DEMO_USERS:
        if username not in existing:
            add_user(
                session,
                principal=principal,
                username=username,
                role=role,
                funder=funder,
                password=password,
            )
            created.append(username)
    return created


def has_registry_data(session: Session) -> bool:
    """True when any programme, delivery, outcome or population row exists."""
    for model in (Programme, Delivery, OutcomeCount, Population, FundingStream):
        if session.scalar(select(func.count()).select_from(model)):
            return True
    return False


def is_synthetic(session: Session) -> bool:
    """True when the registry holds demo data (so every page must say so)."""
    stmt = select(func.count()).select_from(ImportBatch).where(ImportBatch.synthetic.is_(True))
    return bool(session.scalar(stmt))


def _clear(session: Session) -> None:
    for model in (
        OutcomeRevision,
        Delivery,
        OutcomeCount,
        UnallocatedCount,
        Population,
        Programme,
        FundingStream,
    ):
        session.execute(delete(model))
    session.execute(delete(ImportBatch))


@write_action("seed.load")
def load(
    session: Session, *, principal: Principal, seed_dir: Path = SEED_DIR, force: bool = False
) -> dict[str, int]:
    """Load the demo CSV files into an empty registry in one transaction.

    With ``force`` the existing programmes, deliveries, outcomes and population are removed first
    (the audit trail is kept and records the reload). Returns the rows loaded per table.
    """
    if has_registry_data(session):
        if not force:
            raise ConflictError(
                "The registry already holds data; `vru seed --force` replaces it with demo data."
            )
        _clear(session)
    tables = {name: _read(seed_dir / name) for name in FILES}
    batch = ImportBatch(
        kind="seed",
        format="demo-csv",
        file_name=str(seed_dir.name),
        created_by=principal.username,
        synthetic=True,
        rows_read=sum(len(rows) for rows in tables.values()),
        # Demo counts are their own source ("demo"), released with their last month.
        release_date=max((parse_month(r["month"]) for r in tables["outcomes.csv"]), default=None),
        details={"note": SYNTHETIC_NOTE},
    )
    session.add(batch)
    session.flush()
    ids = borough_ids(session)
    stream_ids: dict[str, int] = {}
    for row in tables["funding_streams.csv"]:
        stream = FundingStream(name=row["name"], funder=row["funder"])
        session.add(stream)
        session.flush()
        stream_ids[stream.name] = stream.id
    programme_ids: dict[str, int] = {}
    for row in tables["programmes.csv"]:
        programme = Programme(
            name=row["name"],
            partner=row["partner"] or None,
            funding_stream_id=stream_ids[row["funding_stream"]],
            intervention_type=row["intervention_type"] or None,
            age_min=int(row["age_min"]),
            age_max=int(row["age_max"]),
            start_date=dt.date.fromisoformat(row["start_date"]),
            end_date=dt.date.fromisoformat(row["end_date"]) if row["end_date"] else None,
        )
        session.add(programme)
        session.flush()
        programme_ids[programme.name] = programme.id
    measure_ids = dict(
        session.execute(select(OutcomeMeasure.code, OutcomeMeasure.id)).tuples().all()
    )
    now = dt.datetime.now(dt.UTC)
    session.execute(
        insert(Delivery.__table__),
        [
            {
                "programme_id": programme_ids[r["programme"]],
                "borough_id": ids[r["borough"]],
                "month": parse_month(r["month"]),
                "opportunities": int(r["opportunities"]),
                "participants": int(r["participants"]) if r["participants"] else None,
                "spend_gbp": Decimal(r["spend_gbp"]) if r["spend_gbp"] else None,
                "version": 1,
                "import_batch_id": batch.id,
                "updated_at": now,
                "backfill": True,  # past figures loaded as history, not returns
                "updated_by": principal.username,
            }
            for r in tables["deliveries.csv"]
        ],
    )
    session.execute(
        insert(OutcomeCount.__table__),
        [
            {
                "measure_id": measure_ids[r["measure"]],
                "source": "demo",
                "borough_id": ids[r["borough"]],
                "month": parse_month(r["month"]),
                "count": int(r["count"]),
                "import_batch_id": batch.id,
            }
            for r in tables["outcomes.csv"]
        ],
    )
    session.execute(
        insert(UnallocatedCount.__table__),
        [
            {
                "measure_id": measure_ids[r["measure"]],
                "source": "demo",
                "source_area": r["source_area"],
                "month": parse_month(r["month"]),
                "count": int(r["count"]),
                "import_batch_id": batch.id,
            }
            for r in tables["unallocated.csv"]
        ],
    )
    session.execute(
        insert(Population.__table__),
        [
            {
                "borough_id": ids[r["borough"]],
                "year": int(r["year"]),
                "age_band": r["age_band"],
                "people": int(r["people"]),
                "import_batch_id": batch.id,
            }
            for r in tables["population.csv"]
        ],
    )
    counts = {name.removesuffix(".csv"): len(rows) for name, rows in tables.items()}
    batch.rows_accepted = batch.rows_read
    audit.record(
        session,
        actor=principal,
        action="seed",
        entity="import_batch",
        entity_id=batch.id,
        after=counts,
        detail=SYNTHETIC_NOTE + (" Replaced existing data." if force else ""),
    )
    return counts
