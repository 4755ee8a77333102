"""The 33 London local authorities and the name variants real files use for them.

Published files spell boroughs in many ways (``Kensington & Chelsea``, ``KENSINGTON AND CHELSEA``,
``City of Westminster``, ``Kingston``, a trailing non-breaking space). :func:`lookup` maps every one
of them to the same :class:`BoroughInfo`, and refuses an unknown name with the accepted names and
the closest match, so a typing slip in a spreadsheet is easy to fix.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class BoroughInfo:
    gss_code: str
    name: str
    inner_london: bool


# ONS GSS codes, alphabetical between E09000002 and E09000032 (FORMATS.md). Inner London is the
# ONS statistical definition (E13000001), which includes Haringey and Newham but not Greenwich.
_BOROUGHS: tuple[tuple[str, str, bool], ...] = (
    ("E09000001", "City of London", True),
    ("E09000002", "Barking and Dagenham", False),
    ("E09000003", "Barnet", False),
    ("E09000004", "Bexley", False),
    ("E09000005", "Brent", False),
    ("E09000006", "Bromley", False),
    ("E09000007", "Camden", True),
    ("E09000008", "Croydon", False),
    ("E09000009", "Ealing", False),
    ("E09000010", "Enfield", False),
    ("E09000011", "Greenwich", False),
    ("E09000012", "Hackney", True),
    ("E09000013", "Hammersmith and Fulham", True),
    ("E09000014", "Haringey", True),
    ("E09000015", "Harrow", False),
    ("E09000016", "Havering", False),
    ("E09000017", "Hillingdon", False),
    ("E09000018", "Hounslow", False),
    ("E09000019", "Islington", True),
    ("E09000020", "Kensington and Chelsea", True),
    ("E09000021", "Kingston upon Thames", False),
    ("E09000022", "Lambeth", True),
    ("E09000023", "Lewisham", True),
    ("E09000024", "Merton", False),
    ("E09000025", "Newham", True),
    ("E09000026", "Redbridge", False),
    ("E09000027", "Richmond upon Thames", False),
    ("E09000028", "Southwark", True),
    ("E09000029", "Sutton", False),
    ("E09000030", "Tower Hamlets", True),
    ("E09000031", "Waltham Forest", False),
    ("E09000032", "Wandsworth", True),
    ("E09000033", "Westminster", True),
)

BOROUGHS: tuple[BoroughInfo, ...] = tuple(BoroughInfo(*row) for row in _BOROUGHS)
BY_CODE: dict[str, BoroughInfo] = {b.gss_code: b for b in BOROUGHS}

# Areas in Met Police files that are not boroughs. Importers report them (as London unallocated
# counts) rather than dropping them silently.
MET_PSEUDO_AREAS: tuple[str, ...] = (
    "London Heathrow and London City Airports",
    "Aviation Security (SO18)",
    "Unknown",
    "Other / NK",
    "N/K (Legacy Only)",
    "Non Met Police Force",
)


class UnknownBoroughError(ValueError):
    """A name or code that is not one of the 33 London local authorities."""

    def __init__(self, value: str, suggestion: str | None) -> None:
        self.value = value
        self.suggestion = suggestion
        hint = f" Did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(
            f"{value!r} is not a London borough.{hint} Accepted: a GSS code E09000001 to "
            f"E09000033 or one of the names {', '.join(b.name for b in BOROUGHS)} "
            "(with '&' for 'and', any case)."
        )


def normalise_name(value: str) -> str:
    """Fold a place name to a comparison key: case, ``&``, punctuation and odd spaces removed."""
    text = unicodedata.normalize("NFKC", value).replace("\u00a0", " ")
    text = text.strip().casefold().replace("&", " and ")
    text = re.sub(r"[^a-z0-9() ]+", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    # Council styles: "London Borough of Camden", "Royal Borough of Greenwich", "(RB)".
    text = re.sub(r"^(the )?(royal|london) borough of ", "", text)
    text = re.sub(r" \((rb|lb)\)$", "", text)
    return text


_ALIASES: dict[str, str] = {
    "city of westminster": "E09000033",
    "city": "E09000001",
    "city of london corporation": "E09000001",
    "kingston": "E09000021",
    "richmond": "E09000027",
    "barking": "E09000002",
    "hammersmith": "E09000013",
    "kensington": "E09000020",
}

_BY_KEY: dict[str, str] = {normalise_name(b.name): b.gss_code for b in BOROUGHS} | _ALIASES
_CODE_RE = re.compile(r"^E0900000[1-9]$|^E090000[12][0-9]$|^E090000(3[0-3])$")


def _match_code(value: str) -> str | None:
    cleaned = unicodedata.normalize("NFKC", value).replace("\u00a0", " ").strip().upper()
    return cleaned if _CODE_RE.match(cleaned) else None


def find(value: str) -> BoroughInfo | None:
    """The borough a GSS code or name variant stands for, or ``None``."""
    if not isinstance(value, str):
        return None
    code = _match_code(value)
    if code:
        return BY_CODE[code]
    code = _BY_KEY.get(normalise_name(value))
    return BY_CODE[code] if code else None


def suggest(value: str) -> str | None:
    """The accepted name closest to ``value``, if any is close enough to be a likely slip."""
    key = normalise_name(str(value))
    match = difflib.get_close_matches(key, list(_BY_KEY), n=1, cutoff=0.6)
    return BY_CODE[_BY_KEY[match[0]]].name if match else None


def lookup(value: str) -> BoroughInfo:
    """The borough ``value`` names; raises :class:`UnknownBoroughError` with a suggestion."""
    found = find(value)
    if found is None:
        raise UnknownBoroughError(str(value), suggest(str(value)))
    return found


def pseudo_area_name(value: str) -> str | None:
    """The Met's canonical name of one of its non-borough areas (``Unknown``, airports, aviation
    security, ``Aviation Security(SO18)`` too) that ``value`` names, else ``None``."""
    key = normalise_name(value).replace(" ", "")
    for name in MET_PSEUDO_AREAS:
        if key == normalise_name(name).replace(" ", ""):
            return name
    return None


def borough_ids(session: Session) -> dict[str, int]:
    """Map each GSS code to its ``borough.id`` in this database."""
    from registry.schema import Borough

    return dict(session.execute(select(Borough.gss_code, Borough.id)).tuples().all())
