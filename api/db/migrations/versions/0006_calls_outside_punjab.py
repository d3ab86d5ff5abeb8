"""``calls.outside_punjab``: the province or territory a call came from when not Punjab.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

A 15 call from Islamabad belongs to the Islamabad Capital Territory police; the router
names the province (``"Islamabad Capital Territory"``, ``"Khyber Pakhtunkhwa"``, …) and
routes the call to the nearest Punjab station only as a fallback. The name is kept with
the call (nullable text: ``NULL`` for every call inside Punjab, and for calls taken
before this revision). A plain ``ADD COLUMN`` on both back ends: no rewrite, no default.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("outside_punjab", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("calls", "outside_punjab")  # plain ALTER on both (SQLite >= 3.35)
