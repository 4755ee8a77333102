"""Reference data: the 33 London local authorities and the three VRU outcome measures.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.boroughs import BOROUGHS

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

borough = sa.table(
    "borough",
    sa.column("gss_code", sa.String),
    sa.column("name", sa.String),
    sa.column("inner_london", sa.Boolean),
)
measure = sa.table(
    "outcome_measure",
    sa.column("code", sa.String),
    sa.column("label", sa.String),
    sa.column("definition", sa.Text),
    sa.column("unit", sa.String),
    sa.column("source", sa.Text),
)

MEASURES = [
    {
        "code": "homicide",
        "label": "Homicide",
        "definition": "Murder, manslaughter, corporate manslaughter and infanticide offences "
        "recorded by the Metropolitan Police (Violence Against the Person / Homicide).",
        "unit": "offences",
        "source": "Metropolitan Police Service, MPS Borough Level Crime (London Datastore)",
    },
    {
        "code": "knife_crime_injury_u25",
        "label": "Knife crime with injury, victims under 25",
        "definition": "Victims aged 1-24 of non-domestic knife crime with injury "
        "(Met crime dashboard subgroup 'Knife Injury Victims (non DA 1-24)').",
        "unit": "victims",
        "source": "Metropolitan Police Service, Monthly Crime Dashboard",
    },
    {
        "code": "gun_crime",
        "label": "Gun crime",
        "definition": "Offences in which a firearm was used, including lethal barrel discharges "
        "(Met crime dashboard subgroup 'Gun Crime').",
        "unit": "offences",
        "source": "Metropolitan Police Service, Monthly Crime Dashboard",
    },
]


def upgrade() -> None:
    op.bulk_insert(
        borough,
        [
            {"gss_code": b.gss_code, "name": b.name, "inner_london": b.inner_london}
            for b in BOROUGHS
        ],
    )
    op.bulk_insert(measure, MEASURES)


def downgrade() -> None:
    codes = [m["code"] for m in MEASURES]
    op.execute(measure.delete().where(measure.c.code.in_(codes)))
    op.execute(borough.delete())
