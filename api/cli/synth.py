"""``safecity synth``: generate a call history, and replay it against a running service.

``synth calls`` writes GeoParquet (and the ground truth as JSON beside it) with
:func:`geo.synth.generate_calls`. ``synth replay`` posts calls from such a file to
``POST /api/v1/calls`` at a bounded rate, for a bounded time and count, and only ever to
a loopback address: it is a load tool for this machine, never a way to flood a real
service.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.progress import console, progress_bar

if TYPE_CHECKING:
    import pandas as pd

    from api.db.history_load import HistoryForm, LoadReport

app = typer.Typer(help="Synthetic call histories: generate, and replay against a local service.",
                  no_args_is_help=True)

CALLS_PATH = "/api/v1/calls"
LOOPBACK_NAMES = ("localhost",)
REPLAY_COLUMNS = ("call_id", "received_at", "lat", "lon", "category", "caller_phone")


class NonLoopbackTargetError(ValueError):
    """A replay target that is not a loopback address (127.0.0.0/8, ::1, localhost)."""


def ensure_loopback(url: str) -> str:
    """The calls endpoint for a service URL, or an error if the host is not loopback.

    Host names other than ``localhost`` are refused without any DNS lookup: a name
    could resolve anywhere.
    """
    import httpx  # noqa: PLC0415

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise NonLoopbackTargetError(f"not a valid URL: {url!r} ({exc})") from exc
    if parsed.scheme not in ("http", "https"):
        raise NonLoopbackTargetError(f"replay needs an http(s) URL, got {url!r}")
    host = parsed.host.lower()
    if host not in LOOPBACK_NAMES:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise NonLoopbackTargetError(
                f"refusing to replay to {host!r}: only loopback targets "
                "(127.0.0.0/8, ::1, localhost) are allowed")
    base = str(parsed).rstrip("/")
    return base if base.endswith(CALLS_PATH) else base + CALLS_PATH


@dataclass
class ReplayReport:
    """What a replay achieved."""

    target: str
    planned: int
    sent: int = 0
    succeeded: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    achieved_rate: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentiles(latencies: list[float]) -> dict[str, float]:
    import numpy as np  # noqa: PLC0415

    if not latencies:
        return {}
    values = np.asarray(latencies) * 1000.0
    return {f"p{q}": float(np.percentile(values, q)) for q in (50, 90, 99)} | {
        "max": float(values.max())}


def _bodies(calls: pd.DataFrame, restamp: bool, run: str) -> list[tuple[str, dict[str, Any]]]:
    """(Idempotency-Key, JSON body) per call, in file order.

    A restamped call is a new call (received now), so its key names the run: replaying the
    same file again, or after ``synth load`` stored its calls, makes new calls instead of
    409s (the file's own key with another ``received_at`` is another request).
    """
    from geo.synth import idempotency_key  # noqa: PLC0415

    out: list[tuple[str, dict[str, Any]]] = []
    columns = (calls["call_id"].tolist(), calls["received_at"].tolist(), calls["lat"].tolist(),
               calls["lon"].tolist(), calls["category"].astype(str).tolist(),
               calls["caller_phone"].tolist())
    for call_id, received, lat, lon, category, phone in zip(*columns, strict=True):
        body: dict[str, Any] = {"lat": float(lat), "lon": float(lon), "category": category}
        if isinstance(phone, str) and phone:
            body["caller_phone"] = phone
        if not restamp:
            body["received_at"] = received.isoformat()
        key = idempotency_key(int(call_id), received, float(lat), float(lon), category)
        out.append((f"{key}-live-{run}" if restamp else key, body))
    return out


async def run_replay(calls: pd.DataFrame, url: str, *, rate: float, duration: float,
                     max_calls: int | None = None, concurrency: int = 32,
                     timeout: float = 10.0, restamp: bool = False,
                     on_sent: Any = None, token: str | None = None) -> ReplayReport:
    """Post ``calls`` (columns :data:`REPLAY_COLUMNS`) to a loopback service.

    Open-loop schedule: call ``i`` is due at ``i / rate`` seconds; at most
    ``concurrency`` requests are in flight; nothing is started after ``duration``
    seconds or beyond ``max_calls``; requests still running at ``duration + timeout``
    are cancelled and counted as errors. Each request carries an ``Idempotency-Key``
    derived from the call, so a second replay of the same file creates nothing new
    (restamped calls are new calls: their keys also name this run); ``token`` (a
    call-taker JWT from ``safecity token``) goes in ``Authorization``.
    """
    import httpx  # noqa: PLC0415

    target = ensure_loopback(url)
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    limit = min(len(calls), math.ceil(rate * duration))
    if max_calls is not None:
        limit = min(limit, max(0, max_calls))
    bodies = _bodies(calls.head(limit), restamp, run=f"{time.time_ns():x}")
    report = ReplayReport(target=target, planned=len(bodies))
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    def count_error(kind: str) -> None:
        report.errors[kind] = report.errors.get(kind, 0) + 1

    async def post(client: httpx.AsyncClient, key: str, body: dict[str, Any]) -> None:
        try:
            began = time.perf_counter()
            headers = {"Idempotency-Key": key}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            response = await client.post(target, json=body, headers=headers)
            latencies.append(time.perf_counter() - began)
            if 200 <= response.status_code < 300:
                report.succeeded += 1
            else:
                count_error(str(response.status_code))
        except httpx.HTTPError as exc:
            count_error(type(exc).__name__)
        finally:
            gate.release()

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    tasks: list[asyncio.Task[None]] = []
    async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as client:
        start = time.perf_counter()
        for i, (key, body) in enumerate(bodies):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.perf_counter() - start >= duration:
                break
            await gate.acquire()
            if time.perf_counter() - start >= duration:
                gate.release()
                break
            tasks.append(asyncio.create_task(post(client, key, body)))
            report.sent += 1
            if on_sent is not None:
                on_sent(report.sent)
        remaining = max(0.0, start + duration + timeout - time.perf_counter())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=remaining)
            for task in pending:
                task.cancel()
                count_error("cancelled")
            await asyncio.gather(*pending, return_exceptions=True)
        report.elapsed_s = time.perf_counter() - start
    done = report.succeeded + sum(v for k, v in report.errors.items() if k != "cancelled")
    report.achieved_rate = done / report.elapsed_s if report.elapsed_s > 0 else 0.0
    report.latency_ms = _percentiles(latencies)
    return report


@app.command("calls")
def calls(
    *,
    months: Annotated[int, typer.Option(help="Number of calendar months to generate", min=1)],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same history")],
    out: Annotated[Path, typer.Option(help="Output file; format from the name: .parquet (GeoParquet), "
                                           ".csv or .geojson")],
    scale: Annotated[float, typer.Option(help="Share of PUCAR-15's full volume (1,879,001 calls "
                                               "per 30 days)", min=0.0001, max=10.0)] = 1.0,
    start: Annotated[str | None, typer.Option(help="First month, YYYY-MM (local time)")] = None,
    truth: Annotated[Path | None, typer.Option(help="Write the ground truth (planted hotspots, "
                                                     "slow stations, faults) as JSON here")] = None,
    end: Annotated[str | None, typer.Option(
        help="Stop the history here: 'now' (this minute), a date or an RFC 3339 time; the "
             "history is the --months local months up to it, calls after it dropped and "
             "calls still running at it left open. Replaces --start")] = None,
) -> None:
    """Generate a deterministic call history for Punjab as GeoParquet."""
    from api.cli.data import out_format, save  # noqa: PLC0415
    from api.shipped import generate_calls  # noqa: PLC0415
    from geo.synth import save_truth  # noqa: PLC0415

    out_format(out)
    if truth is not None and truth.resolve() == out.resolve():
        raise typer.BadParameter("--truth must be another file than --out")
    if end is not None and start is not None:
        raise typer.BadParameter("give --start or --end, not both")
    end_at = parse_end(end) if end is not None else None
    began = time.perf_counter()
    with progress_bar("synth calls") as update:
        try:
            frame, facts = generate_calls(months, seed, scale, start, end=end_at,
                                          progress=lambda step, f: update(step, 0.9 * f))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        generated = time.perf_counter() - began
        update(f"writing {out.suffix}", 0.92)
        save(frame, out, credits=False)
        if truth is not None:
            save_truth(facts, truth)
        update("done", 1.0)
    counts = facts["counts"]["by_category"]
    genuine = sum(v for k, v in counts.items() if k not in ("hoax", "dropped"))
    console.print(
        f"{len(frame):,} calls ({genuine:,} genuine, {counts.get('hoax', 0):,} hoax, "
        f"{counts.get('dropped', 0):,} dropped; {facts['counts']['out_of_coverage']:,} out of "
        f"coverage) → {out}; generated in {generated:.1f} s, "
        f"{time.perf_counter() - began:.1f} s in all"
        + (f"; truth → {truth}" if truth is not None else "")
        + (f"; ends {facts['end_utc']} with {facts['counts']['open_at_end']:,} calls open"
           if end_at is not None else ""))


def parse_end(value: str, now: datetime | None = None) -> datetime:
    """``now`` (the current minute, UTC), a date (its local midnight, PKT) or an RFC 3339
    time with an offset, as an aware UTC time."""
    from datetime import UTC, timedelta, timezone  # noqa: PLC0415

    from geo.synth.config import LOCAL_UTC_OFFSET_HOURS  # noqa: PLC0415

    if value.strip().lower() == "now":
        return (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"not 'now', a date or an RFC 3339 time: {value!r}",
                                 param_hint="--end") from exc
    if parsed.tzinfo is None:
        if len(value.strip()) > 10:
            raise typer.BadParameter(f"a time needs an offset (Z or +05:00): {value!r}",
                                     param_hint="--end")
        parsed = parsed.replace(tzinfo=timezone(timedelta(hours=LOCAL_UTC_OFFSET_HOURS)))
    return parsed.astimezone(UTC)


@app.command("replay")
def replay(
    calls_file: Annotated[Path, typer.Argument(help="GeoParquet written by `synth calls`")],
    *,
    url: Annotated[str, typer.Option(help="Base URL of a running service on loopback")],
    rate: Annotated[float, typer.Option(help="Calls per second to send", min=0.001)],
    duration: Annotated[float, typer.Option(help="Stop starting new calls after this many "
                                                  "seconds", min=0.001)],
    max_calls: Annotated[int | None, typer.Option(help="Send at most this many calls", min=0)] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at most", min=1)] = 32,
    timeout: Annotated[float, typer.Option(help="Per-request timeout in seconds", min=0.1)] = 10.0,
    restamp: Annotated[bool, typer.Option(help="Omit received_at: the service stamps the time "
                                               "of arrival")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON")] = None,
    token: Annotated[str | None, typer.Option(envvar="SAFECITY_TOKEN",
                                              help="Bearer token (safecity token --role call_taker "
                                                   "--scope PK6)")] = None,
) -> None:
    """Post calls to ``POST /api/v1/calls`` of a loopback service; report rate, errors, latency."""
    import pandas as pd  # noqa: PLC0415

    try:
        target = ensure_loopback(url)
    except NonLoopbackTargetError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    try:
        frame = pd.read_parquet(calls_file, columns=list(REPLAY_COLUMNS))
    except (OSError, ValueError, KeyError) as exc:
        raise typer.BadParameter(f"cannot read calls from {calls_file}: {exc}") from exc
    frame = frame.sort_values(["received_at", "call_id"], kind="stable")
    planned = min(len(frame), math.ceil(rate * duration),
                  max_calls if max_calls is not None else len(frame))
    with progress_bar(f"replay → {target}") as update:
        report = asyncio.run(run_replay(
            frame, url, rate=rate, duration=duration, max_calls=max_calls,
            concurrency=concurrency, timeout=timeout, restamp=restamp, token=token,
            on_sent=lambda sent: update(f"{sent:,}/{planned:,} sent", sent / max(planned, 1))))
        update("done", 1.0)
    lat = report.latency_ms
    console.print(
        f"sent {report.sent:,} of {report.planned:,} planned in {report.elapsed_s:.2f} s: "
        f"{report.achieved_rate:.1f} calls/s (asked {rate:g}); {report.succeeded:,} succeeded, "
        f"errors {report.errors or 'none'}; latency ms "
        + (", ".join(f"{k} {v:.1f}" for k, v in lat.items()) if lat else "n/a"))
    for hint in replay_hints(report.errors, token=token, restamp=restamp):
        console.print(f"[yellow]{hint}[/yellow]")
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    if report.sent and report.succeeded == 0:
        raise typer.Exit(1)


def replay_hints(errors: dict[str, int], *, token: str | None, restamp: bool) -> list[str]:
    """What the error counts of a replay mean and what to do about them."""
    hints = []
    if errors.get("401"):
        hints.append("401: the service wants a call taker's token"
                     + (" and refused this one (expired, or signed with another secret)"
                        if token else "; none was given")
                     + ": pass --token \"$(safecity token --role call_taker)\" or set SAFECITY_TOKEN")
    if errors.get("403"):
        hints.append("403: the token's scope does not cover where these calls were routed; "
                     "use a province-wide call-taker token (safecity token --role call_taker)")
    if errors.get("409"):
        hints.append("409: these Idempotency-Keys were already used with other bodies (the "
                     "file was loaded or replayed before with other times)"
                     + ("" if restamp else "; --restamp sends them as new calls stamped now"))
    return hints


# --------------------------------------------------------------------------- load

def load_history(calls: pd.DataFrame, engine: Any, *, boundaries: Any = None,
                 progress: Any = None, chunk: int | None = None) -> LoadReport:
    """Write a generated history into ``calls`` and ``call_events`` (see
    :func:`api.db.history_load.load_history`: binary COPY on PostgreSQL, ``executemany``
    on SQLite, one transaction, idempotent), named by ``boundaries`` (the shipped Punjab
    set when not given)."""
    from api.areas import Areas  # noqa: PLC0415
    from api.db import history_load  # noqa: PLC0415
    from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

    boundaries = boundaries or punjab_boundary_set()
    return history_load.load_history(calls, engine, boundary_set=str(boundaries.version),
                                     form=history_form(Areas(boundaries)), progress=progress,
                                     chunk=chunk or history_load.LOAD_CHUNK)


def prepare_history(calls: pd.DataFrame, boundary_set: str, areas: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of ``calls`` and ``call_events`` for a history (see
    :func:`api.db.history_load.prepare_history`)."""
    from api.db.history_load import prepare_history as prepare  # noqa: PLC0415

    return prepare(calls, boundary_set, history_form(areas))


def history_form(areas: Any) -> HistoryForm:
    """The call domain's description of a stored call, for the column-wise loader (which
    imports no domain code): the wire form's template, labels, classes, the state
    machine and the area names of ``areas``."""
    import msgspec  # noqa: PLC0415

    from api.db.history_load import HistoryForm  # noqa: PLC0415
    from api.domain.calls.categories import Categories  # noqa: PLC0415
    from api.domain.calls.lifecycle import allowed_events  # noqa: PLC0415
    from api.domain.calls.schemas import Call  # noqa: PLC0415
    from api.domain.calls.wire import CallEncoder  # noqa: PLC0415

    encoder = CallEncoder()
    categories = Categories()
    return HistoryForm(
        template=encoder.template, label=categories.label,
        call_class={code: categories.get(code).call_class for code in categories.codes()},
        allowed_events=allowed_events, area_name=areas.name,
        canonical=lambda text: encoder.encode(msgspec.json.decode(text, type=Call)))


LOAD_COLUMNS = ("call_id", "received_at", "lat", "lon", "category", "serious", "caller_phone",
                "station_code", "tehsil_code", "district_code", "region_code", "acknowledged_at",
                "dispatched_at", "on_scene_at", "closed_at", "out_of_coverage")


@app.command("load")
def load(
    calls_file: Annotated[Path, typer.Argument(help="GeoParquet written by `synth calls`")],
) -> None:
    """Write a generated history into the calls table (migrating the database first).

    PostGIS when ``DATABASE_URL`` is set (COPY), else the embedded SQLite file. Calls
    already in the database (same id) are skipped, so loading twice adds nothing.
    """
    import pandas as pd  # noqa: PLC0415

    from api.db.engine import describe, sync_engine  # noqa: PLC0415
    from api.db.errors import DatabaseError  # noqa: PLC0415
    from api.db.migrate import upgrade  # noqa: PLC0415

    try:
        frame = pd.read_parquet(calls_file, columns=list(LOAD_COLUMNS))
    except (OSError, ValueError, KeyError) as exc:
        raise typer.BadParameter(f"cannot read calls from {calls_file}: {exc}") from exc
    try:
        engine = sync_engine()
        with progress_bar(f"synth load → {describe(engine)}") as update:
            update("migrating", 0.0)
            upgrade(engine)
            report = load_history(frame, engine, progress=update)
    except DatabaseError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    rate = report.calls_in_file / report.elapsed_s if report.elapsed_s > 0 else 0.0
    console.print(
        f"{report.inserted:,} calls and {report.events:,} events written, "
        f"{report.already_present:,} already present ({report.backend}"
        + ("; indexes built after the copy" if report.rebuilt_indexes else "")
        + f"); {report.elapsed_s:.1f} s, {rate:,.0f} calls/s")


app.command("live")(__import__("api.cli.live", fromlist=["live"]).live)
