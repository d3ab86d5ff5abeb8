"""Start-up of the analytics service: it shares the call service's sessions and the
boundary set being served, so it must start after both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar

from api.domain.analytics.services import AnalyticsService, CallHistoryRepository


@asynccontextmanager
async def analytics_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Put ``analytics`` on ``app.state`` (needs ``db_sessions`` and ``jurisdictions``)."""
    app.state.analytics = AnalyticsService(CallHistoryRepository(app.state.db_sessions),
                                           lambda: app.state.jurisdictions.boundaries)
    yield
