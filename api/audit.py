"""The audit log: every routing decision, every read of a call, every write."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import insert, select

from api.auth import Principal
from api.db.call_models import AuditEntry, metadata

_INSERT = insert(metadata.tables["audit_log"])
_SELECT = select(AuditEntry)
"""Built once: one Core ``INSERT`` per entry costs a fraction of an ORM flush."""


class AuditService(SQLAlchemyAsyncRepositoryService[AuditEntry, "AuditService.Repo"]):
    """Writes entries in the caller's transaction, so they commit (or not) with it."""

    class Repo(SQLAlchemyAsyncRepository[AuditEntry]):
        model_type = AuditEntry

        async def append(self, values: dict[str, Any]) -> None:
            await (await self.session.connection()).execute(_INSERT, values)

    repository_type = Repo

    def __init__(self, session: Any, **kwargs: Any) -> None:
        kwargs.setdefault("statement", _SELECT)
        super().__init__(session=session, **kwargs)

    async def record(self, principal: Principal, action: str, at: datetime, *,
                     call_id: UUID | None = None, detail: dict[str, Any] | None = None) -> None:
        """Write one entry in the current transaction."""
        await self.repository.append(entry(principal, action, at, call_id=call_id, detail=detail))


def entry(principal: Principal, action: str, at: datetime, *, call_id: UUID | None = None,
          detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """The column values of one entry (for writers that insert it themselves)."""
    return {"at": at, "actor": principal.subject, "role": principal.role, "action": action,
            "call_id": call_id, "detail": {"scope": principal.scope, **(detail or {})}}
