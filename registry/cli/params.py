"""One click parameter type per kind of value the ``vru`` commands take.

A value that cannot be read is a usage error (exit code 2, one line naming the option), the same
in every command; whether it names something that exists (a measure, a programme) is the
registry's check, refused with exit code 1 like any other refusal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import click

from registry.periods import PeriodError, parse_month
from registry.schema import ROLES


class MonthType(click.ParamType):
    """A month written ``YYYY-MM``, read as the first day of that month."""

    name = "YYYY-MM"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.date):
            return value
        try:
            return parse_month(value)
        except PeriodError as exc:
            self.fail(str(exc), param, ctx)


class MeasureType(click.ParamType):
    """An outcome measure code (see ``vru measures list``), without surrounding spaces."""

    name = "MEASURE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        code = str(value).strip()
        if not code:
            self.fail("give a measure code, for example homicide (see `vru measures list`).")
        return code


MONTH = MonthType()
MEASURE = MeasureType()
ROLE = click.Choice(ROLES)

#: How figures are grouped over time; a command offers the ones its output supports.
PERIODS = ("month", "quarter", "financial_year")


def period(*names: str) -> click.Choice:
    """The periods a command can group by: ``names``, each one of :data:`PERIODS`."""
    if not set(names) <= set(PERIODS):
        raise ValueError(f"{names} are not all among {PERIODS}.")
    return click.Choice(names)


_F = TypeVar("_F", bound=Callable[..., Any])


def json_option(help_text: str = "Print JSON.") -> Callable[[_F], _F]:
    """``--json``: print the command's result as JSON (the parameter ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def dry_run_option(fn: _F) -> _F:
    """``--dry-run``: an import checked and reported in full, nothing written."""
    return click.option(
        "--dry-run", is_flag=True, help="Validate and report what would change; write nothing."
    )(fn)
