"""Recording deliveries: one row by form, many by grid or spreadsheet, with one set of rules.

Every way in (the form, the grid, an upload, ``vru import deliveries``) goes through the same three
steps:

1. :func:`check_rows` validates every row at once with pandas (no per-row database work) and
   reports each problem as row, column, value and reason;
2. :func:`preview` compares the valid rows with what the registry holds and classifies each as
   added, amended or unchanged, with plausibility warnings beside unusual figures;
3. :func:`commit` writes the added and amended rows in one transaction with bulk Core statements,
   after checking that none of them changed since it was read (the ``version`` column), so two
   people editing the same row cannot overwrite each other silently.

Amendments keep an audit event each (who, when, before, after); deletions are soft, with a reason.
A month an admin has signed off refuses changes until it is reopened.

The steps live in :mod:`.validate`, :mod:`.compare` and :mod:`.write`; the form and grid in
:mod:`.entry`; returns and sign-off in :mod:`.returns`; the limits and the helpers they share
(reading the rows a change touches, the signed-off months) in :mod:`.common`. A submodule imports
only public names from another. Every name the rest of the registry uses is importable from here.
"""

from __future__ import annotations

from registry.deliveries.common import (
    DUE_DAY,
    FIELDS,
    MAX_COUNT,
    MAX_SPEND,
    PLAUSIBILITY_MIN_MONTHS,
    PLAUSIBILITY_MIN_RATE,
    PLAUSIBILITY_MONTHS,
    PLAUSIBILITY_P,
)
from registry.deliveries.compare import STATUSES, Preview, preview, preview_upload
from registry.deliveries.entry import (
    GRID_COLUMNS,
    delete_delivery,
    export_frame,
    get_delivery,
    preview_grid,
    programme_grid,
    save_delivery,
    save_grid,
)
from registry.deliveries.returns import (
    RETURN_STATUSES,
    completeness,
    due_date,
    month_returns,
    never_reported,
    reopen_month,
    sign_off_month,
    signed_off_months,
)
from registry.deliveries.validate import Checked, check_rows
from registry.deliveries.write import SaveResult, commit, import_file

__all__ = [
    "DUE_DAY",
    "FIELDS",
    "GRID_COLUMNS",
    "MAX_COUNT",
    "MAX_SPEND",
    "PLAUSIBILITY_MIN_MONTHS",
    "PLAUSIBILITY_MIN_RATE",
    "PLAUSIBILITY_MONTHS",
    "PLAUSIBILITY_P",
    "RETURN_STATUSES",
    "STATUSES",
    "Checked",
    "Preview",
    "SaveResult",
    "check_rows",
    "commit",
    "completeness",
    "delete_delivery",
    "due_date",
    "export_frame",
    "get_delivery",
    "import_file",
    "month_returns",
    "never_reported",
    "preview",
    "preview_grid",
    "preview_upload",
    "programme_grid",
    "reopen_month",
    "save_delivery",
    "save_grid",
    "sign_off_month",
    "signed_off_months",
]
