"""The area dashboard's per-call projection (``dashboard_calls``) and its refresh mark.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

The projection starts empty with its mark at 0: the refresh job (or
``safecity dashboard refresh``) takes in the stored history on its first runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEVELS = ("station", "tehsil", "district", "region")
OPEN_WHERE = ("status IN ('received', 'transferred', 'acknowledged', 'dispatched', 'en_route', "
              "'on_scene')")


def upgrade() -> None:
    op.create_table(
        "dashboard_calls",
        sa.Column("call_id", GUID(length=16), nullable=False),
        sa.Column("received_at", DateTimeUTC(timezone=True), nullable=False),
        *(sa.Column(f"{level}_code", sa.String(length=64), nullable=False) for level in LEVELS),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("serious", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("queue_s", sa.Double(), nullable=True),
        sa.Column("response_s", sa.Double(), nullable=True),
        sa.Column("response_bin", sa.Integer(), nullable=True),
        sa.Column("within_sla", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_dashboard_calls")),
    )
    op.create_index("ix_dashboard_calls_received_at", "dashboard_calls", ["received_at"])
    for level in LEVELS:
        op.create_index(f"ix_dashboard_calls_{level}_received", "dashboard_calls",
                        [f"{level}_code", "received_at"])
    op.create_index("ix_dashboard_calls_open", "dashboard_calls", ["received_at"],
                    postgresql_where=sa.text(OPEN_WHERE), sqlite_where=sa.text(OPEN_WHERE))
    op.create_table(
        "dashboard_refresh",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("refreshed_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_refresh")),
    )


def downgrade() -> None:
    op.drop_table("dashboard_refresh")
    op.drop_index("ix_dashboard_calls_open", table_name="dashboard_calls")
    for level in LEVELS:
        op.drop_index(f"ix_dashboard_calls_{level}_received", table_name="dashboard_calls")
    op.drop_index("ix_dashboard_calls_received_at", table_name="dashboard_calls")
    op.drop_table("dashboard_calls")
