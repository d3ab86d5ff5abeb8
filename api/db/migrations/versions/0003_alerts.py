"""Alerts: the alert table, its history, and the stored deadline of every call.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

``alerts`` (unique ``dedup_key``: two workers never raise the same alert twice),
``alert_events`` (append-only; its identity ``id`` is the alert feeds' event id) and
``calls.next_alert_at`` with a partial index of the calls that still have a deadline.
Models: :mod:`api.db.alert_models`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DETAIL_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
CODE = sa.String(length=64)
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AREA_INDEXED = ("station", "district", "region")


def _identity() -> sa.Column[Any]:
    return sa.Column("id", BIGINT, sa.Identity(always=False, start=1, increment=1), nullable=False)


def _time(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, DateTimeUTC(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("calls", _time("next_alert_at", nullable=True))  # plain ALTER on both
    where = sa.text("next_alert_at IS NOT NULL")
    op.create_index("ix_calls_next_alert_at", "calls", ["next_alert_at"], unique=False,
                    postgresql_where=where, sqlite_where=where)

    op.create_table(
        "alerts",
        _identity(),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("code", CODE, nullable=False),
        sa.Column("escalation", sa.Integer(), nullable=False),
        *(sa.Column(f"{level}_code", CODE, nullable=True)
          for level in ("station", "tehsil", "district", "region")),
        sa.Column("call_id", GUID(length=16), nullable=True),
        sa.Column("call_ids", DETAIL_JSON, nullable=False),
        _time("due_at"),
        _time("raised_at"),
        _time("updated_at"),
        _time("acknowledged_at", nullable=True),
        sa.Column("acknowledged_by", sa.Text(), nullable=True),
        _time("resolved_at", nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", DETAIL_JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_alerts_dedup_key")),
    )
    op.create_index("ix_alerts_state_raised", "alerts", ["state", "raised_at"], unique=False)
    for level in AREA_INDEXED:
        op.create_index(f"ix_alerts_{level}_raised", "alerts", [f"{level}_code", "raised_at"],
                        unique=False)
    op.create_index(op.f("ix_alerts_call_id"), "alerts", ["call_id"], unique=False)

    op.create_table(
        "alert_events",
        _identity(),
        sa.Column("alert_id", BIGINT, nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        _time("at"),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("code", CODE, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"],
                                name=op.f("fk_alert_events_alert_id_alerts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    op.create_index("ix_alert_events_alert_id_id", "alert_events", ["alert_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_alert_events_alert_id_id", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_index(op.f("ix_alerts_call_id"), table_name="alerts")
    for level in AREA_INDEXED:
        op.drop_index(f"ix_alerts_{level}_raised", table_name="alerts")
    op.drop_index("ix_alerts_state_raised", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_calls_next_alert_at", table_name="calls")
    op.drop_column("calls", "next_alert_at")
