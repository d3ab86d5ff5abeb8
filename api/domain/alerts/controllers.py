"""``/alerts`` (list, read, acknowledge, resolve, live feed) and ``/stats/response``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, WebSocket, get, post, websocket
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import Parameter
from litestar.response import ServerSentEvent

from api.auth import Principal
from api.domain.alerts.feeds import AlertFeedService
from api.domain.alerts.schemas import Alert, AlertAction, AlertPage, AlertWithHistory
from api.domain.alerts.services import DEFAULT_PAGE, MAX_PAGE, AlertService
from api.domain.calls.controllers import SECURITY, aware
from api.domain.calls.deps import provide_areas, provide_principal
from api.domain.feeds.controllers import LAST_EVENT_ID, serve_socket, sse_response
from api.domain.stations.areas import Areas
from api.domain.stats.services import ResponseQuery, ResponseStatsService

AlertId = Annotated[int, Parameter(ge=1, le=2**63 - 1, description="An alert's id")]


def provide_alerts(state: State) -> AlertService:
    alerts: AlertService = state.alert_service
    return alerts


def provide_alert_feeds(state: State) -> AlertFeedService:
    feeds: AlertFeedService = state.alert_feeds
    return feeds


def provide_stats(state: State) -> ResponseStatsService:
    stats: ResponseStatsService = state.response_stats
    return stats


class AlertController(Controller):
    path = "/alerts"
    tags = ["alerts"]
    security = SECURITY
    dependencies = {
        "principal": Provide(provide_principal, sync_to_thread=False),
        "alerts": Provide(provide_alerts, sync_to_thread=False),
    }

    @get("/", operation_id="listAlerts")
    async def list_alerts(
        self, *, alerts: AlertService, principal: Principal,
        level: Annotated[str | None, Parameter(max_length=16)] = None,
        code: Annotated[str | None, Parameter(max_length=64)] = None,
        state_: Annotated[str | None, Parameter(query="state", max_length=16)] = None,
        type_: Annotated[str | None, Parameter(query="type", max_length=24)] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        cursor: Annotated[str | None, Parameter(max_length=20)] = None,
    ) -> AlertPage:
        """Alerts in an area within the caller's scope, newest first."""
        return await alerts.list_alerts(principal, level=level, code=code, state=state_,
                                        type=type_, limit=limit, cursor=cursor)

    @get("/{alert_id:int}", operation_id="getAlert")
    async def get_alert(self, alert_id: AlertId, alerts: AlertService,
                        principal: Principal) -> AlertWithHistory:
        """One alert with its escalation history."""
        return await alerts.get_alert(alert_id, principal)

    @post("/{alert_id:int}/acknowledge", operation_id="acknowledgeAlert", status_code=200)
    async def acknowledge(self, alert_id: AlertId, alerts: AlertService, principal: Principal,
                          data: AlertAction | None = None) -> Alert:
        """Take responsibility: an acknowledged alert stops escalating."""
        return await alerts.move(alert_id, "acknowledged", principal, data.note if data else None)

    @post("/{alert_id:int}/resolve", operation_id="resolveAlert", status_code=200)
    async def resolve(self, alert_id: AlertId, alerts: AlertService, principal: Principal,
                      data: AlertAction | None = None) -> Alert:
        """Close the alert (the engine also resolves breaches and waits that cleared)."""
        return await alerts.move(alert_id, "resolved", principal, data.note if data else None)

    @get("/feed/{level:str}/{code:str}", operation_id="alertFeed",
         media_type="text/event-stream",
         dependencies={"areas": Provide(provide_areas, sync_to_thread=False),
                       "feeds": Provide(provide_alert_feeds, sync_to_thread=False)})
    async def feed(self, *, level: str, code: str, areas: Areas, feeds: AlertFeedService,
                   principal: Principal,
                   last_event_id: Annotated[int | None, LAST_EVENT_ID] = None) -> ServerSentEvent:
        """SSE of the alerts addressed to a command level (or above) in its area."""
        return await sse_response(feeds, areas.get(level, code), principal, last_event_id)


@websocket("/ws/alerts/{level:str}/{code:str}", dependencies={
    "areas": Provide(provide_areas, sync_to_thread=False),
    "feeds": Provide(provide_alert_feeds, sync_to_thread=False)})
async def alert_feed_socket(socket: WebSocket[Any, Any, Any], level: str, code: str, areas: Areas,
                            feeds: AlertFeedService) -> None:
    """A command level's alert feed over WebSocket (``?access_token=``, ``?last_event_id=``)."""
    await serve_socket(socket, level, code, areas, feeds)


class StatsController(Controller):
    path = "/stats"
    tags = ["stats"]
    security = SECURITY
    dependencies = {
        "principal": Provide(provide_principal, sync_to_thread=False),
        "stats": Provide(provide_stats, sync_to_thread=False),
    }

    @get("/response", operation_id="responseStats")
    async def response(
        self, *, stats: ResponseStatsService, principal: Principal,
        level: Annotated[str, Parameter(max_length=16)] = "province",
        code: Annotated[str | None, Parameter(max_length=64)] = None,
        since: Annotated[datetime | None, Parameter(query="from")] = None,
        until: Annotated[datetime | None, Parameter()] = None,
        category: Annotated[str | None, Parameter(max_length=64)] = None,
        serious: Annotated[bool | None, Parameter()] = None,
        by: Annotated[str | None, Parameter(max_length=8)] = None,
    ) -> dict[str, Any]:
        """Queue, dispatch, travel, response and on-scene times: count, excluded, mean,
        p50, p90 (minutes), share within SLA, per child area (``by=child``), and an
        hour-of-day × weekday table."""
        query = ResponseQuery(level=level, code=code, since=aware(since, "from"),
                              until=aware(until, "until"), category=category, serious=serious,
                              by=by)
        return await stats.response(query, principal)
