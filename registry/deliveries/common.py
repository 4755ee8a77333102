"""Limits and names every step of recording deliveries shares."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from registry.periods import month_index

MAX_COUNT = 1_000_000
MAX_SPEND = Decimal("999999999999.99")
# Plausibility: compare with the median of up to this many earlier months, needing at least
# PLAUSIBILITY_MIN_MONTHS of them, and warn when the figure is this improbable under Poisson.
PLAUSIBILITY_MONTHS = 6
PLAUSIBILITY_MIN_MONTHS = 3
PLAUSIBILITY_P = 0.001
PLAUSIBILITY_MIN_RATE = 1.0
DUE_DAY = 15  # a month's return is due by this day of the following month
FIELDS = ("opportunities", "participants", "spend_gbp")
_KEY = ["programme_id", "borough_id", "mi"]


def _current_mi() -> int:
    return month_index(dt.date.today())
