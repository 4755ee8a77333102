"""Each measure's population band: the people its rate is per.

Homicide, robbery, violence with injury, possession of weapons and gun crime are rates per
100,000 residents (all ages); knife crime with injury, victims under 25, per 100,000 aged 1-24
(the ages the Met counts). Measures added by an admin default to all ages.

Revision ID: 0009_population_bands
Revises: 0008_outcome_sources
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_population_bands"
down_revision: str | None = "0008_outcome_sources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

measure = sa.table(
    "outcome_measure", sa.column("code", sa.String), sa.column("population_band", sa.String)
)
BANDS = {"knife_crime_injury_u25": "1-24"}


def upgrade() -> None:
    # A plain ADD COLUMN (not a batch copy): on SQLite, rebuilding outcome_measure would drop a
    # table other tables' foreign keys point at.
    op.add_column(
        "outcome_measure",
        sa.Column(
            "population_band", sa.String(length=16), server_default="all ages", nullable=False
        ),
    )
    for code, band in BANDS.items():
        op.execute(measure.update().where(measure.c.code == code).values(population_band=band))


def downgrade() -> None:
    op.drop_column("outcome_measure", "population_band")
