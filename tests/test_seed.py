"""The synthetic demo data: deterministic, realistic in size, loadable, labelled."""

from __future__ import annotations

import filecmp

import pandas as pd
import pytest
from sqlalchemy import func, select

from registry import db, demo
from registry.auth import SYSTEM
from registry.errors import ConflictError, PermissionDenied
from registry.schema import Delivery, ImportBatch, OutcomeCount, Population, Programme
from tests.conftest import STAFF

# Slow lane: regenerates and loads the demo data; `make test-fast` leaves it out.
pytestmark = pytest.mark.slow


def test_generator_is_deterministic_and_matches_committed_files(tmp_path) -> None:
    first = demo.generate(tmp_path / "a")
    demo.generate(tmp_path / "b")
    for path in first:
        assert filecmp.cmp(path, tmp_path / "b" / path.name, shallow=False), path.name
        assert filecmp.cmp(path, demo.SEED_DIR / path.name, shallow=False), (
            f"seed/{path.name} is stale: run python seed/generate.py"
        )
    other = demo.generate(tmp_path / "c", seed=7)
    assert not filecmp.cmp(other[2], first[2], shallow=False)


def test_generated_figures_have_a_realistic_size() -> None:
    outcomes = pd.read_csv(demo.SEED_DIR / "outcomes.csv")
    outcomes["year"] = outcomes["month"].str[:4].astype(int)
    homicide = outcomes[outcomes.measure == "homicide"].groupby("year")["count"].sum()
    full_years = homicide.loc[2015:2025]
    assert full_years.between(90, 160).all()
    assert homicide.loc[2023:2025].mean() < homicide.loc[2019] * 0.85  # falling after 2019
    assert (outcomes[outcomes.measure == "homicide"]["count"] == 0).mean() > 0.6
    population = pd.read_csv(demo.SEED_DIR / "population.csv")
    young = population[(population.year == 2020) & (population.age_band == "10-24")]
    london_2020 = young.people.sum()
    assert london_2020 == 1_581_803
    deliveries = pd.read_csv(demo.SEED_DIR / "deliveries.csv")
    assert deliveries.month.min() >= "2016-04"
    assert 400_000 < deliveries.opportunities.sum() < 800_000
    assert deliveries.programme.nunique() == 12
    assert pd.read_csv(demo.SEED_DIR / "funding_streams.csv").shape[0] in (4, 5)


def test_load_into_empty_database_and_refuse_a_second_time(engine) -> None:
    with db.session_scope(engine) as s:
        counts = demo.load(s, principal=SYSTEM)
    files = {p.stem: len(pd.read_csv(p)) for p in (demo.SEED_DIR / f for f in demo.FILES)}
    assert counts == files
    with db.session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == files["deliveries"]
        assert s.scalar(select(func.count()).select_from(OutcomeCount)) == files["outcomes"]
        assert s.scalar(select(func.count()).select_from(Population)) == files["population"]
        assert s.scalar(select(func.count()).select_from(Programme)) == 12
        assert demo.is_synthetic(s)
        total = s.scalar(select(func.sum(Delivery.opportunities)))
    assert total == pd.read_csv(demo.SEED_DIR / "deliveries.csv").opportunities.sum()
    with pytest.raises(ConflictError), db.session_scope(engine) as s:
        demo.load(s, principal=SYSTEM)
    with db.session_scope(engine) as s:
        demo.load(s, principal=SYSTEM, force=True)
        assert s.scalar(select(func.count()).select_from(ImportBatch)) == 1
        assert s.scalar(select(func.count()).select_from(Programme)) == 12


def test_only_admins_may_seed(engine) -> None:
    with pytest.raises(PermissionDenied), db.session_scope(engine) as s:
        demo.load(s, principal=STAFF)
