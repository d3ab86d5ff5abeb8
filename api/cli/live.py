"""``safecity synth live``: a steady trickle of new demo calls through the API, so feeds,
alerts and dashboards move while someone looks at them.

Places and categories are drawn from a generated history (``synth calls``), so new calls
fall where calls fall. First a backlog: calls received over the last minutes, some
acknowledged and dispatched, the rest left unacknowledged, so the alert engine has
something to raise from the start. Then one call every few seconds, stamped by the
service on arrival; most are acknowledged, dispatched and closed a little later as a
station would, a share is left waiting (and escalates). Loopback targets only, like
``synth replay``.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.progress import console

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx
    import numpy as np
    import pandas as pd

PLACE_COLUMNS = ("lat", "lon", "category")
HEALTH_PATH = "/health"
CANCELLED_AT_ONCE = frozenset({"hoax", "dropped"})
"""Categories a call taker cancels during the call itself (no station ever sees them)."""
STEPS = (("acknowledged", 45.0), ("dispatched", 120.0), ("on_scene", 600.0), ("closed", 1500.0))
"""Each lifecycle step of a handled live call and its typical delay after the call, seconds
(the demo's pace; real ones vary by category and place)."""


@dataclass
class LiveReport:
    """What a live run did."""

    posted: int = 0
    backlog: int = 0
    events: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    unstaffed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(order=True)
class _Due:
    at: float
    call_id: str = field(compare=False)
    kind: str = field(compare=False)


async def wait_for_health(client: httpx.AsyncClient, base: str, timeout_s: float) -> None:
    """Return once ``GET /health`` answers 200; TimeoutError after ``timeout_s``."""
    import httpx  # noqa: PLC0415

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if (await client.get(base + HEALTH_PATH)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{base}{HEALTH_PATH} did not answer within {timeout_s:.0f} s")
        await asyncio.sleep(1.0)


async def run_live(places: pd.DataFrame, base: str, token: str, *, per_minute: float,
                   duration_s: float | None, backlog: int, backlog_min: float,
                   waiting_share: float, seed: int, health_timeout_s: float = 300.0,
                   keep_going: Callable[[], bool] = lambda: True) -> LiveReport:
    """Post calls drawn from ``places`` (:data:`PLACE_COLUMNS`) to the service at ``base``.

    ``backlog`` calls first, received over the last ``backlog_min`` minutes; then
    ``per_minute`` calls a minute until ``duration_s`` (None: until ``keep_going`` says
    no). A call is handled (acknowledged, dispatched, on scene, closed at the delays of
    :data:`STEPS`) unless drawn into ``waiting_share``; backlog calls have their past
    steps recorded at once.
    """
    import httpx  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    report = LiveReport()
    run = f"{time.time_ns():x}"
    headers = {"Authorization": f"Bearer {token}"}
    due: list[_Due] = []
    async with httpx.AsyncClient(timeout=30.0, trust_env=False, headers=headers) as client:
        await wait_for_health(client, base, health_timeout_s)
        post = _Poster(client, base, places, rng, report)
        now = datetime.now(UTC)
        ages = np.sort(rng.uniform(0.0, backlog_min * 60.0, size=backlog))[::-1]
        for i, age in enumerate(ages):
            received = now - timedelta(seconds=float(age))
            call_id = await post.call(f"live-{run}-b{i}", received)
            if call_id is None:
                continue
            report.backlog += 1
            if rng.random() >= waiting_share:
                for kind, delay in STEPS:
                    at = received + timedelta(seconds=delay * float(rng.uniform(0.5, 1.5)))
                    if at >= datetime.now(UTC):
                        heapq.heappush(due, _Due(time.monotonic() + (at - now).total_seconds(),
                                                 call_id, kind))
                        break  # the rest follow from the live schedule
                    await post.event(call_id, kind, at)
        started = time.monotonic()
        interval = 60.0 / per_minute
        next_call = started
        i = 0
        while keep_going() and (duration_s is None or time.monotonic() - started < duration_s):
            clock = time.monotonic()
            while due and due[0].at <= clock:
                step = heapq.heappop(due)
                if await post.event(step.call_id, step.kind) and \
                        (after := _next_step(step.kind)) is not None:
                    heapq.heappush(due, _Due(clock + after * float(rng.uniform(0.5, 1.5)),
                                             step.call_id, _step_after(step.kind)))
            if clock >= next_call:
                call_id = await post.call(f"live-{run}-{i}", None)
                i += 1
                if call_id is not None and rng.random() >= waiting_share:
                    heapq.heappush(due, _Due(clock + STEPS[0][1] * float(rng.uniform(0.5, 1.5)),
                                             call_id, STEPS[0][0]))
                next_call += interval * float(rng.exponential(1.0))
            wake = min([next_call, *(d.at for d in due[:1])])
            await asyncio.sleep(min(1.0, max(0.05, wake - time.monotonic())))
    return report


def _step_after(kind: str) -> str:
    kinds = [k for k, _ in STEPS]
    return kinds[kinds.index(kind) + 1]


def _next_step(kind: str) -> float | None:
    """Seconds from step ``kind`` to the next one (None after the last)."""
    kinds = [k for k, _ in STEPS]
    at = kinds.index(kind)
    return None if at + 1 == len(STEPS) else STEPS[at + 1][1] - STEPS[at][1]


@dataclass
class _Poster:
    """Posts calls and events to one service, counting outcomes in ``report``."""

    client: httpx.AsyncClient
    base: str
    places: pd.DataFrame
    rng: np.random.Generator
    report: LiveReport

    async def call(self, key: str, received: datetime | None) -> str | None:
        """Post a call drawn from the places (received now unless ``received``); its id."""
        import httpx  # noqa: PLC0415

        row = self.places.iloc[int(self.rng.integers(len(self.places)))]
        body: dict[str, Any] = {"lat": float(row["lat"]), "lon": float(row["lon"]),
                                "category": str(row["category"])}
        if received is not None:
            body["received_at"] = received.isoformat()
        try:
            answer = await self.client.post(self.base + "/api/v1/calls", json=body,
                                            headers={"Idempotency-Key": key})
        except httpx.HTTPError as exc:
            _count(self.report.errors, type(exc).__name__)
            return None
        if answer.status_code != 201:
            _count(self.report.errors, str(answer.status_code))
            return None
        call = answer.json()
        self.report.posted += 1
        self.report.unstaffed += bool(call.get("unstaffed"))
        if body["category"] in CANCELLED_AT_ONCE:  # the call taker drops it on the phone
            await self.event(str(call["id"]), "cancelled", received, reason=body["category"])
            return None
        return str(call["id"])

    async def event(self, call_id: str, kind: str, at: datetime | None = None, *,
                    reason: str | None = None) -> bool:
        """Record lifecycle event ``kind`` of a call (now unless ``at``)."""
        import httpx  # noqa: PLC0415

        body: dict[str, Any] = {"type": kind} | ({"reason": reason} if reason else {})
        if at is not None:
            body["at"] = at.isoformat()
        try:
            answer = await self.client.post(f"{self.base}/api/v1/calls/{call_id}/events",
                                            json=body)
        except httpx.HTTPError as exc:
            _count(self.report.errors, type(exc).__name__)
            return False
        if answer.status_code != 201:
            _count(self.report.errors, f"event {answer.status_code}")
            return False
        _count(self.report.events, kind)
        return True


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def live(
    *,
    url: Annotated[str, typer.Option(help="Base URL of the running service (loopback only)")
                   ] = "http://127.0.0.1:8000",
    calls_file: Annotated[Path, typer.Option(
        "--calls", help="A history from `synth calls`: where and what new calls are")
    ] = Path(".safecity/demo-calls.parquet"),
    per_minute: Annotated[float, typer.Option(min=0.1, max=600, help="New calls a minute")] = 6.0,
    backlog: Annotated[int, typer.Option(min=0, max=1000, help="Calls received over the last "
                                                              "--backlog-min minutes, first")] = 40,
    backlog_min: Annotated[float, typer.Option(min=1, max=24 * 60)] = 45.0,
    waiting_share: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of calls nobody acknowledges (they raise alerts)")] = 0.2,
    duration: Annotated[float | None, typer.Option(
        min=1.0, help="Stop after this many seconds (default: until stopped)")] = None,
    while_pid: Annotated[int | None, typer.Option(
        help="Stop when this process ends (the service demo.sh started)")] = None,
    seed: Annotated[int, typer.Option(help="Which places and categories are drawn")] = 15,
    token: Annotated[str | None, typer.Option(
        envvar="SAFECITY_TOKEN", help="Bearer token of a role that takes calls and records "
                                      "their events (default: an admin token signed with the "
                                      "local secret)")] = None,
) -> None:
    """Post a steady trickle of new calls (and their handling) to a local service."""
    import pandas as pd  # noqa: PLC0415

    from api.cli.synth import NonLoopbackTargetError, ensure_loopback  # noqa: PLC0415

    try:
        base = ensure_loopback(url).removesuffix("/api/v1/calls")
    except NonLoopbackTargetError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    try:
        places = pd.read_parquet(calls_file, columns=list(PLACE_COLUMNS))
    except (OSError, ValueError, KeyError) as exc:
        raise typer.BadParameter(f"cannot read calls from {calls_file}: {exc}",
                                 param_hint="--calls") from exc
    # hoax and dropped calls end on the phone and would show nothing: genuine ones only
    places = places.loc[~places["category"].astype(str).isin(CANCELLED_AT_ONCE)]
    if places.empty:
        raise typer.BadParameter(f"{calls_file} holds no genuine calls", param_hint="--calls")
    token = token or _admin_token()

    def keep_going() -> bool:
        return while_pid is None or _alive(while_pid)

    console.print(f"synth live → {base}: {backlog} recent calls, then {per_minute:g} a minute"
                  + (f" for {duration:g} s" if duration else " until stopped"))
    try:
        report = asyncio.run(run_live(places, base, token, per_minute=per_minute,
                                      duration_s=duration, backlog=backlog,
                                      backlog_min=backlog_min, waiting_share=waiting_share,
                                      seed=seed, keep_going=keep_going))
    except TimeoutError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    console.print(f"synth live: {report.posted:,} calls posted ({report.backlog} backlog, "
                  f"{report.unstaffed} unstaffed), events {report.events or 'none'}, "
                  f"errors {report.errors or 'none'}")


def _admin_token() -> str:
    from api.settings import get_settings  # noqa: PLC0415
    from api.tokens import mint_token, signing_secret  # noqa: PLC0415

    settings = get_settings()
    secret = signing_secret(settings.jwt_secret, settings.jwt_secret_file)
    return mint_token(secret, "admin", "PK6", "province", subject="synth-live",
                      ttl_s=30 * 24 * 3600)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
