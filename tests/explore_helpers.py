"""Explore's frames put together from the registry's parts, as the Explore page does with its
cached parts (dashboards/explore.py), for tests that compute figures without Streamlit."""

from __future__ import annotations

from sqlalchemy.orm import Session

from registry.auth import Principal
from registry.figures.explore import (
    ExploreData,
    area_names,
    delivery_by_month,
    explore_options,
    measure_population,
    outcomes_by_month,
    young_people,
)
from registry.outcomes.measures import get_measure


def explore_data(session: Session, *, principal: Principal, measure: str) -> ExploreData:
    """Every delivery, ``measure``'s counts and the populations of the years with data."""
    options = explore_options(session, principal=principal)
    first = options.first_month.year if options.first_month else 2000
    last = options.last_month.year if options.last_month else first
    band = measure_population(
        session, principal=principal, measure=measure, first_year=first, last_year=last
    )
    return ExploreData(
        measure,
        get_measure(session, measure).label,
        area_names(session, principal=principal),
        delivery_by_month(session, principal=principal),
        outcomes_by_month(session, principal=principal, measure=measure),
        young_people(session, principal=principal, first_year=first, last_year=last),
        band.band,
        band.people,
    )
