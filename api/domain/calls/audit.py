"""The audit log: every routing decision, every read of a call, every write."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from api.auth import Principal
from api.db.call_models import AuditEntry


class AuditService(SQLAlchemyAsyncRepositoryService[AuditEntry, "AuditService.Repo"]):
    """Adds entries to the caller's unit of work, so they commit (or not) with it."""

    class Repo(SQLAlchemyAsyncRepository[AuditEntry]):
        model_type = AuditEntry

    repository_type = Repo

    def record(self, principal: Principal, action: str, at: datetime, *,
               call_id: UUID | None = None, detail: dict[str, Any] | None = None) -> None:
        """Queue one entry in the current transaction (written at its commit)."""
        self.repository.session.add(AuditEntry(
            at=at, actor=principal.subject, role=principal.role, action=action, call_id=call_id,
            detail={"scope": principal.scope, **(detail or {})},
        ))
