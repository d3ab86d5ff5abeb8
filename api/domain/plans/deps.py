"""Start-up of the planner: its store, its background runner and the service on ``app.state``.

It uses the call service's sessions (``db_sessions``), areas (``areas``) and the boundary
set being served (``jurisdictions``), so it must start after those lifespans.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection

from api.domain.analytics.services import CallHistoryRepository
from api.domain.plans.services import PlanRunner, PlanService, PlanStore


@asynccontextmanager
async def plans_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Put ``plans`` on ``app.state`` and run the plan jobs until shutdown."""
    import anyio  # noqa: PLC0415

    sessions = app.state.db_sessions
    store = PlanStore(sessions)
    history = CallHistoryRepository(sessions)
    runner = PlanRunner(store, history, lambda: app.state.jurisdictions.boundaries)
    app.state.plans = PlanService(store, runner, history, lambda: app.state.jurisdictions.boundaries,
                                  app.state.areas.get)
    await runner.startup()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(runner.serve)
        try:
            yield
        finally:
            tasks.cancel_scope.cancel()
            await runner.shutdown()


def provide_plans(request: ASGIConnection[Any, Any, Any, Any]) -> PlanService:
    service: PlanService = request.app.state.plans
    return service
