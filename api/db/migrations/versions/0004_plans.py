"""Safe City expansion plans: the background jobs of ``POST /api/v1/plans`` and their results.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

``plans``: one row per plan job (state, stage, progress, seconds per stage, the request,
the tehsil with its district and region codes, who asked, the owning process and its
heartbeat) and, once it succeeded, the summary, the sites as GeoJSON and the demand
cells. No geometry column: results are GeoJSON documents (JSONB on PostgreSQL). Models:
:mod:`api.db.plan_models`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLAN_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
CODE = sa.String(length=64)


def _time(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, DateTimeUTC(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column("params", PLAN_JSON, nullable=False),
        sa.Column("tehsil_code", CODE, nullable=False),
        sa.Column("tehsil_name", sa.Text(), nullable=False),
        sa.Column("district_code", CODE, nullable=False),
        sa.Column("region_code", CODE, nullable=False),
        sa.Column("boundary_set", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_role", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _time("started_at", nullable=True),
        _time("finished_at", nullable=True),
        _time("heartbeat_at"),
        sa.Column("timings", PLAN_JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("summary", PLAN_JSON, nullable=True),
        sa.Column("result", PLAN_JSON, nullable=True),
        sa.Column("demand", PLAN_JSON, nullable=True),
        sa.CheckConstraint("state IN ('queued', 'running', 'succeeded', 'failed')",
                           name=op.f("ck_plans_state")),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name=op.f("ck_plans_progress")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
    )
    op.create_index("ix_plans_state_heartbeat", "plans", ["state", "heartbeat_at"], unique=False)
    op.create_index("ix_plans_district_created", "plans", ["district_code", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_plans_district_created", table_name="plans")
    op.drop_index("ix_plans_state_heartbeat", table_name="plans")
    op.drop_table("plans")
