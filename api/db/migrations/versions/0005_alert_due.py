"""Alert deadlines move from ``calls.next_alert_at`` to a narrow ``alert_due`` table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

The engine moves a call's deadline after every look at it. As an indexed column of the
wide ``calls`` table, each move rewrote the row and all of its twelve index entries (no
HOT update is possible when an indexed column changes), and so did every lifecycle
event. ``alert_due`` holds ``(call_id, next_alert_at)`` for the calls that still have a
deadline, with one index on the deadline. Existing deadlines are carried over.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_due",
        sa.Column("call_id", GUID(length=16), nullable=False),
        sa.Column("next_alert_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_alert_due_call_id_calls")),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_alert_due")),
    )
    op.create_index(op.f("ix_alert_due_next_alert_at"), "alert_due", ["next_alert_at"],
                    unique=False)
    op.execute("INSERT INTO alert_due (call_id, next_alert_at) "
               "SELECT id, next_alert_at FROM calls WHERE next_alert_at IS NOT NULL")
    op.drop_index("ix_calls_next_alert_at", table_name="calls")
    op.drop_column("calls", "next_alert_at")  # plain ALTER on both (SQLite >= 3.35)


def downgrade() -> None:
    op.add_column("calls", sa.Column("next_alert_at", DateTimeUTC(timezone=True), nullable=True))
    where = sa.text("next_alert_at IS NOT NULL")
    op.create_index("ix_calls_next_alert_at", "calls", ["next_alert_at"], unique=False,
                    postgresql_where=where, sqlite_where=where)
    op.execute("UPDATE calls SET next_alert_at = (SELECT next_alert_at FROM alert_due "
               "WHERE alert_due.call_id = calls.id)")
    op.drop_index(op.f("ix_alert_due_next_alert_at"), table_name="alert_due")
    op.drop_table("alert_due")
