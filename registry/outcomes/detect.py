"""Recognise a file's format from its header, so a page can pre-select it and a refusal can say
"this looks like a police.uk file" instead of just listing missing columns."""

from __future__ import annotations

from registry.outcomes.common import Source, header_of

POLICE_UK_COLUMNS = {"Month", "Falls within", "LSOA name", "Crime type"}
LONG_CRIME_COLUMNS = {"measure", "borough", "month", "count"}
LONG_POPULATION_COLUMNS = {"borough", "year", "age_band", "people"}
ONS_COLUMNS = {"Code", "Name", "All ages"}
NOMIS_COLUMNS = {"DATE_NAME", "GEOGRAPHY_CODE", "GENDER_NAME", "C_AGE_NAME", "OBS_VALUE"}


def detect_columns(columns: list[str]) -> str | None:
    """The import format whose header these columns are, or ``None``."""
    from registry.outcomes.mps_borough import layout_of
    from registry.outcomes.mps_dashboard import has_dashboard_columns

    cols = set(columns)
    if layout_of(columns):
        return "mps-borough"
    if has_dashboard_columns(columns):
        return "mps-dashboard"
    if cols >= POLICE_UK_COLUMNS:
        return "police-uk"
    if {c.lower() for c in cols} >= LONG_CRIME_COLUMNS:
        return "long"
    if cols >= ONS_COLUMNS:
        return "ons-single-year"
    if {c.upper() for c in cols} >= NOMIS_COLUMNS:
        return "nomis"
    if {c.lower() for c in cols} >= LONG_POPULATION_COLUMNS:
        return "long-population"
    return None


def detect(source: Source) -> str | None:
    """The format of ``source`` judged from its header (``long-population`` for population)."""
    return detect_columns(header_of(source))


_POPULATION_FORMATS = {
    "ons-single-year": "ons-single-year",
    "nomis": "nomis",
    "long-population": "long",
}


def describe(columns: list[str], *, command: str, fmt: str) -> str:
    """A hint for a refusal: which format the header looks like, if any.

    ``command`` (``crime`` or ``population``) and ``fmt`` are what the user ran, so the hint
    names the other format or the other command, never the one already in use.
    """
    found = detect_columns(columns)
    if found in _POPULATION_FORMATS:
        found_command, found_fmt = "population", _POPULATION_FORMATS[found]
    else:
        found_command, found_fmt = "crime", found
    if found is None or (found_command, found_fmt) == (command, fmt):
        shown = ",".join(columns[:8]) + (",..." if len(columns) > 8 else "")
        return f"; its header is '{shown}'"
    kinds = {
        "ons-single-year": "an ONS population",
        "nomis": "a Nomis population",
        "long-population": "a long population",
    }
    kind = kinds.get(found, f"a '{found_fmt}'")
    if found_command == command:
        return f"; it looks like {kind} file (use --format {found_fmt})"
    return (
        f"; it looks like {kind} file (import it with "
        f"`vru import {found_command} --format {found_fmt}`)"
    )
