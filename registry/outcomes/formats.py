"""The table of import formats: one :class:`ImportFormat` per ``--format`` a file is read in.

Everything that depends on the format reads :data:`FORMATS`: the ``--format`` choices and help
of ``vru import crime|population`` and which files a folder stands for
(:mod:`registry.cli.outcomes`), the format lists of the Outcome data page, recognising a file
from its header and the hint in a refusal (:mod:`registry.outcomes.detect`), reading the files in
the child process (:mod:`registry.outcomes.store`), the formats with a category mapping
(:mod:`registry.outcomes.mapping`) and the file each crime source is loaded from
(:mod:`registry.outcomes.sources`).

How to add a format
-------------------
1. Write its parser module next to this one: a function reading one
   :class:`~registry.outcomes.common.Source` (or, like police.uk, several at once) into a
   :class:`~registry.outcomes.common.ParsedCrime` or
   :class:`~registry.outcomes.common.ParsedPopulation`, refusing a wrong file with
   :func:`~registry.outcomes.common.refuse` or
   :class:`~registry.outcomes.common.ImportRefused` (one :class:`~registry.problems.Problem` per
   wrong cell). The reading and checking helpers the parsers share are in
   :mod:`registry.outcomes.common`; end a missing-column refusal with
   :func:`registry.outcomes.detect.describe`, which names the format the header looks like.
2. Add its entry to :data:`FORMATS`. The order matters: a header is taken to be the first
   entry's whose ``detect`` accepts it, and choices are listed in this order.
3. The parts outside this module, which ``tests/test_import_formats.py`` checks for every entry
   (it fails until they are there): a sample file in ``tests/fixtures/outcomes`` named in its
   ``SAMPLES``; the format's row (``docs``) in the README's table of formats and its code in the
   README's ``vru import`` line; for a ``mapping`` family, its categories in
   ``default_mapping.csv``; for a crime format, its place in
   :data:`registry.outcomes.sources.SOURCES` (counts are stored under their format as source;
   which measures prefer it is a decision for their source order, not made here).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from registry.errors import RegistryError
from registry.outcomes import long as long_crime
from registry.outcomes import mps_borough, mps_dashboard, police_uk, population
from registry.outcomes.common import ParsedCrime, ParsedPopulation, Progress, Source

if TYPE_CHECKING:
    from registry.outcomes.mapping import Mapper

Kind = Literal["crime", "population"]
P = TypeVar("P", ParsedCrime, ParsedPopulation)


@dataclass(frozen=True)
class ReadOptions:
    """What a parser may need besides the files; each format takes what it uses.

    Built in the parent process and sent to the child that reads the files, so it holds only
    picklable values.
    """

    mapper: Mapper | None = None  # the category mapping in force, for a format with a family
    measures: frozenset[str] = frozenset()  # measure codes (a long crime file names them)
    year: int | None = None  # --year (the ONS file says no year)
    bands: tuple[str, ...] = ()  # the measures' population bands, derived besides the defaults

    def category_mapper(self) -> Mapper:
        assert self.mapper is not None, "store gives the mapper to every format with a family"
        return self.mapper


Reader = Callable[[list[Source], ReadOptions, Progress], list[P]]


def each_file(read: Callable[[Source, ReadOptions, Progress], P]) -> Reader[P]:
    """A reader of one file as a reader of several: one result per file, in the order given,
    with the progress of each file a share of the whole."""

    def read_all(sources: list[Source], options: ReadOptions, progress: Progress) -> list[P]:
        return [
            read(source, options, _share(progress, i, len(sources)))
            for i, source in enumerate(sources)
        ]

    return read_all


def _share(progress: Progress, i: int, n: int) -> Progress:
    """The progress of the ``i``-th of ``n`` files as a share of the whole."""

    def step(fraction: float, message: str) -> None:
        progress((i + fraction) / n, message)

    return step


def has_columns(*names: str, fold: Callable[[str], str] = str) -> Callable[[list[str]], bool]:
    """A ``detect`` rule: the header holds every one of ``names`` (compared after ``fold``,
    e.g. ``str.lower`` for a format whose column names may come in any case)."""
    wanted = set(names)

    def rule(columns: list[str]) -> bool:
        return wanted <= {fold(c) for c in columns}

    return rule


@dataclass(frozen=True)
class FolderRule:
    """Which of a folder's CSV and XLSX files a format reads, for a folder that holds others
    too (a data.police.uk download holds outcomes and stop-and-search files beside the street
    files). A format without one reads every CSV and XLSX file in the folder."""

    pattern: str  # matched with the file name in lower case: "*-street.csv"
    files: str  # the files it takes, for a folder holding none: "data.police.uk *-street.csv files"

    def takes(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name.lower(), self.pattern)


@dataclass(frozen=True)
class ImportFormat(Generic[P]):
    """One import format: its names, how it is recognised, read, mapped and documented."""

    code: str  # the --format value; stored as the batch's format (and a crime count's source)
    kind: Kind  # read by `vru import crime` or by `vru import population`
    description: str  # the file in one line: "They come from {description}", the page's help
    help: str  # what --format's help says of it in brackets after the code ("" for nothing)
    called: str  # how a refusal's hint names such a file: "it looks like {called} file"
    docs: str  # its row in the README's table of formats (a test keeps the two the same)
    detect: Callable[[list[str]], bool]  # whether a header (cells cleaned) is this format's
    parse: Reader[P]  # the files to parsed results, in the child process within the limits
    mapping: str | None = None  # its category mapping family (default_mapping.csv's first column)
    folder: FolderRule | None = None  # which files of a folder it reads; None: CSV and XLSX
    takes_year: bool = False  # whether --year applies (the file carries no year column)


FORMATS: tuple[ImportFormat[Any], ...] = (
    ImportFormat(
        code="mps-borough",
        kind="crime",
        description="the Met's borough-level crime file (MPS Borough Level Crime, London "
        "Datastore)",
        help="",
        called="a 'mps-borough'",
        docs='the Met\'s "MPS Borough Level Crime" wide file, Historical or most recent 24 '
        "months, in all three layouts (to 2018; 2019 to early 2024; 2024 on, upper case); "
        "ward-level and LSOA-level files are summed to borough",
        detect=lambda columns: mps_borough.layout_of(columns) is not None,
        parse=each_file(lambda s, o, p: mps_borough.parse(s, o.category_mapper(), p)),
        mapping="mps-borough",
    ),
    ImportFormat(
        code="mps-dashboard",
        kind="crime",
        description="the Met's Monthly Crime Dashboard export (London Datastore; csv or xlsx)",
        help="CSV or XLSX",
        called="a 'mps-dashboard'",
        docs="the Met's Monthly Crime Dashboard file (CSV or XLSX, old `Crime Type`/`Crime "
        "Subtype` headers too): `Borough` rows of the `Offences` measure; Safer Neighbourhood "
        "Team and `Positive Outcomes` rows are skipped and reported",
        detect=mps_dashboard.has_dashboard_columns,
        parse=each_file(lambda s, o, p: mps_dashboard.parse(s, o.category_mapper(), p)),
        mapping="mps-dashboard",
    ),
    ImportFormat(
        code="police-uk",
        kind="crime",
        description="data.police.uk street files",
        help="files or folders",
        called="a 'police-uk'",
        docs="data.police.uk street-level files: one, many or a folder (of which only the "
        "`*-street.csv` files are taken; the others are listed as ignored), aggregated together "
        "to borough and month from the LSOA name's local authority, read in chunks",
        detect=has_columns(*police_uk.COLUMNS),
        # One force's LSOAs over the border add to another file's boroughs: read together.
        parse=lambda sources, o, p: [police_uk.parse(sources, o.category_mapper(), p)],
        mapping="police-uk",
        folder=FolderRule("*-street.csv", "data.police.uk *-street.csv files"),
    ),
    ImportFormat(
        code="long",
        kind="crime",
        description="a long file (measure,borough,month,count)",
        help="",
        called="a 'long'",
        docs="`measure,borough,month,count` for any other source (`borough`: GSS code, name, or "
        "one of the Met's non-borough areas)",
        detect=has_columns(*long_crime.COLUMNS, fold=str.lower),
        parse=each_file(lambda s, o, p: long_crime.parse(s, set(o.measures), p)),
    ),
    ImportFormat(
        code="ons-single-year",
        kind="population",
        description="the ONS mid-year population estimates by single year of age",
        help="ONS mid-year estimates",
        called="an ONS population",
        docs="ONS mid-year estimates by single year of age, summed to `10-24`, `10-17`, `18-24`, "
        "`all ages` and every band a measure declares (`1-24`); `--year` unless the file name "
        "holds it (`ONS2020_...`)",
        detect=has_columns("Code", "Name", "All ages"),
        parse=each_file(lambda s, o, _p: population.parse_ons(s, o.year, o.bands)),
        takes_year=True,
    ),
    ImportFormat(
        code="nomis",
        kind="population",
        description="the ONS mid-year population estimates as Nomis exports them",
        help="the estimates as Nomis exports them",
        called="a Nomis population",
        docs="the mid-year estimates as Nomis exports them (2021 onwards): CSV with `DATE_NAME`, "
        "`GEOGRAPHY_NAME`, `GEOGRAPHY_CODE`, `GENDER_NAME`, `C_AGE_NAME`, `MEASURES_NAME`, "
        "`OBS_VALUE`, one row per area, year, sex and age (`Age 0` ... `Aged 90+`, `All Ages`); "
        "persons (`Total`/`All persons`) taken, or males and females added when only they are "
        "given; the same bands derived; a band whose ages the export lacks is reported as "
        "skipped",
        detect=has_columns(
            "DATE_NAME", "GEOGRAPHY_CODE", "GENDER_NAME", "C_AGE_NAME", "OBS_VALUE", fold=str.upper
        ),
        parse=each_file(lambda s, o, _p: population.parse_nomis(s, o.bands)),
    ),
    ImportFormat(
        code="long",
        kind="population",
        description="a long population file (borough,year,age_band,people)",
        help="borough,year,age_band,people",
        called="a long population",
        docs="`borough,year,age_band,people`",
        detect=has_columns(*population.LONG_COLUMNS, fold=str.lower),
        parse=each_file(lambda s, _o, _p: population.parse_long(s)),
    ),
)


def of_kind(kind: Kind) -> tuple[ImportFormat[Any], ...]:
    """The formats ``vru import {kind}`` reads, in the table's order."""
    return tuple(f for f in FORMATS if f.kind == kind)


def codes(kind: Kind) -> tuple[str, ...]:
    """The ``--format`` choices of ``vru import {kind}``."""
    return tuple(f.code for f in of_kind(kind))


def find(kind: Kind, code: str) -> ImportFormat[Any]:
    """The ``kind`` format called ``code``, or a refusal naming the choices."""
    for found in of_kind(kind):
        if found.code == code:
            return found
    raise RegistryError(f"Unknown {kind} format {code!r}; choose one of {', '.join(codes(kind))}.")


def crime_format(code: str) -> ImportFormat[ParsedCrime]:
    return find("crime", code)


def population_format(code: str) -> ImportFormat[ParsedPopulation]:
    return find("population", code)


def or_list(items: Iterable[str]) -> str:
    """``a, b or c``."""
    *rest, last = items
    return f"{', '.join(rest)} or {last}" if rest else last


def choices_help(kind: Kind) -> str:
    """The ``--format`` choices as the help lists them: ``mps-dashboard (CSV or XLSX), ...``."""
    return or_list(f"{f.code} ({f.help})" if f.help else f.code for f in of_kind(kind))


CRIME_FORMATS = codes("crime")
POPULATION_FORMATS = codes("population")
# The category mapping families, each a `source_format` of default_mapping.csv and the
# admin's overrides (`vru measures mapping`).
MAPPED_FORMATS = tuple(dict.fromkeys(f.mapping for f in FORMATS if f.mapping))
