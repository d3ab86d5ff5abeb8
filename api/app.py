"""The Litestar application: a thin HTTP layer over the domain packages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from api.domain.analytics.controllers import AnalyticsController
from api.domain.analytics.deps import analytics_lifespan
from api.domain.calls.wiring import call_service_parts
from api.domain.feeds.controllers import UNPREFIXED_SOCKETS
from api.domain.jurisdictions.controllers import JurisdictionController
from api.domain.jurisdictions.services import JurisdictionService
from api.domain.maps.assets import ASSET_ROUTES, COMPRESSION, SCHEMA_PAGES
from api.domain.maps.controllers import MapController
from api.domain.plans.controllers import PlanController, PlanMapController
from api.domain.plans.deps import plans_lifespan
from api.domain.routing.controllers import RoutingController
from api.domain.routing.services import RoutingService
from api.errors import EXCEPTION_HANDLERS
from api.settings import Settings, get_settings


@get("/health", operation_id="health", tags=["ops"])
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the app; the router and boundary set load once at start-up."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        import anyio  # noqa: PLC0415

        from api.boundaries import current_boundaries  # noqa: PLC0415
        from api.routing import current_router  # noqa: PLC0415

        router = await anyio.to_thread.run_sync(lambda: current_router(settings))
        boundaries = await anyio.to_thread.run_sync(lambda: current_boundaries(settings))
        app.state.routing = RoutingService(router)
        app.state.jurisdictions = JurisdictionService(boundaries)
        # a newly loaded or imported boundary set is picked up without a restart
        from api.db.boundary_store import RouterHolder  # noqa: PLC0415

        holder = RouterHolder(settings, router=router)

        async def follow_boundary_sets() -> None:
            while True:
                await anyio.sleep(settings.routing.reload_poll_s)
                if await anyio.to_thread.run_sync(holder.refresh):
                    fresh = await anyio.to_thread.run_sync(lambda: current_boundaries(settings))
                    app.state.routing = RoutingService(holder.router)
                    app.state.jurisdictions = JurisdictionService(fresh)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(follow_boundary_sets)
            yield
            tasks.cancel_scope.cancel()

    calls = call_service_parts(settings)
    v1 = Router(path="/api/v1", route_handlers=[RoutingController, JurisdictionController,
                                                *calls.route_handlers, AnalyticsController,
                                                PlanController])
    bearer = SecurityScheme(type="http", scheme="bearer", bearer_format="JWT",
                            description="safecity token --role ROLE --scope CODE")
    return Litestar(
        route_handlers=[health, v1, MapController, PlanMapController, *ASSET_ROUTES, *UNPREFIXED_SOCKETS],
        lifespan=[lifespan, calls.lifespan, analytics_lifespan, plans_lifespan],
        plugins=[calls.channels],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(title="safecity", version="0.1.0", path="/schema",
                                     components=Components(security_schemes={"BearerToken": bearer}),
                                     render_plugins=SCHEMA_PAGES),
        compression_config=COMPRESSION,
        debug=False,
    )


def app_factory() -> Litestar:
    """Entry point for ``uvicorn --factory api.app:app_factory``."""
    return create_app()
