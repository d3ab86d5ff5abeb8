"""The Litestar application: a thin HTTP layer over the domain packages.

:func:`create_app` reads top to bottom: the container of the service's parts
(:mod:`api.container`), the routes, the dependencies that hand the parts to the handlers
(:mod:`api.deps`), and the lifespan that opens the container, brings the live channels
up, runs the jobs beside the requests, and undoes it all in reverse.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router, get
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from api.container import Container
from api.deps import dependencies
from api.domain.accounts.controllers import SIGN_IN_HANDLERS, SignInController
from api.domain.alerts.controllers import AlertController, alert_feed_socket
from api.domain.analytics.controllers import AnalyticsController
from api.domain.analytics.schemas import ResultMeta
from api.domain.calls.controllers import CallController
from api.domain.console.controllers import ConsoleController
from api.domain.dashboard.controllers import DashboardApiController, DashboardPages
from api.domain.feeds.controllers import (
    UNPREFIXED_SOCKETS,
    FeedController,
    area_feed_socket,
    station_feed,
    station_feed_socket,
)
from api.domain.front.controllers import FRONT_ROUTES, LANDING_ROUTES
from api.domain.jurisdictions.controllers import JurisdictionController
from api.domain.maps.assets import ASSET_ROUTES, COMPRESSION, SCHEMA_PAGES
from api.domain.maps.controllers import DashHeatmapController, MapController, PlanMapController
from api.domain.planner.controllers import PlannerController
from api.domain.plans.controllers import PlanController
from api.domain.routing.controllers import RoutingController
from api.domain.stations.controllers import StationController
from api.domain.stats.controllers import StatsController
from api.domain.trends.controllers import DashTrendsController, TrendsController
from api.errors import EXCEPTION_HANDLERS
from api.hardening import (
    WebSocketOriginGuard,
    redact_access_log,
    stamp_response,
    strict_json_body,
)
from api.openapi_truth import tell_the_truth
from api.settings import get_settings


@get("/health", operation_id="health", tags=["ops"])
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


def create_app(container: Container | None = None) -> Litestar:
    """The app serving ``container`` (by default one built from the environment's settings);
    one app per container."""
    container = container or Container(get_settings())
    redact_access_log()  # no bearer token from a URL in the server's log

    v1 = Router(path="/api/v1", route_handlers=[
        RoutingController, JurisdictionController, CallController, StationController,
        FeedController, station_feed, station_feed_socket, area_feed_socket, AlertController,
        alert_feed_socket, StatsController, AnalyticsController, PlanController,
        TrendsController, DashboardApiController])

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await container.open()  # the boundary set loaded, the router warmed, workers started
        try:
            async with container.channels, container.jobs:  # the bus is up while jobs publish
                with container.workers.cancel_on_signals():  # SIGTERM: heavy jobs end at once
                    yield
        finally:
            await container.close()

    bearer = SecurityScheme(type="http", scheme="bearer", bearer_format="JWT",
                            description="safecity token --role ROLE --scope CODE")
    app = Litestar(
        route_handlers=[health, v1, MapController, PlanMapController, DashTrendsController,
                        *ASSET_ROUTES, *UNPREFIXED_SOCKETS, *LANDING_ROUTES, *FRONT_ROUTES,
                        SignInController, ConsoleController, PlannerController,
                        DashboardPages, DashHeatmapController],
        dependencies=dependencies(container),
        lifespan=[lifespan],
        exception_handlers={**EXCEPTION_HANDLERS, **SIGN_IN_HANDLERS},
        before_request=strict_json_body, before_send=[stamp_response],  # docs/security.md
        middleware=[DefineMiddleware(WebSocketOriginGuard, allowed=container.settings.allowed_origins)],
        openapi_config=OpenAPIConfig(title="safecity", version="0.1.0", path="/schema",
                                     components=Components(security_schemes={"BearerToken": bearer}),
                                     render_plugins=SCHEMA_PAGES),
        compression_config=COMPRESSION,
        debug=False,
    )
    tell_the_truth(app, ResultMeta)  # the OpenAPI document as the service answers
    return app


def app_factory() -> Litestar:
    """Entry point for ``uvicorn --factory api.app:app_factory``."""
    return create_app()
