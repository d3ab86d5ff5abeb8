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
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.progress import console, progress_bar

if TYPE_CHECKING:
    import pandas as pd

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


def _bodies(calls: pd.DataFrame, restamp: bool) -> list[tuple[str, dict[str, Any]]]:
    """(Idempotency-Key, JSON body) per call, in file order."""
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
        out.append((idempotency_key(int(call_id), received, float(lat), float(lon), category), body))
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
    derived from the call, so a second replay of the same file creates nothing new;
    ``token`` (a call-taker JWT from ``safecity token``) goes in ``Authorization``.
    """
    import httpx  # noqa: PLC0415

    target = ensure_loopback(url)
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    limit = min(len(calls), math.ceil(rate * duration))
    if max_calls is not None:
        limit = min(limit, max(0, max_calls))
    bodies = _bodies(calls.head(limit), restamp)
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
    out: Annotated[Path, typer.Option(help="Output GeoParquet file")],
    scale: Annotated[float, typer.Option(help="Share of PUCAR-15's full volume (1,879,001 calls "
                                               "per 30 days)", min=0.0001, max=10.0)] = 1.0,
    start: Annotated[str | None, typer.Option(help="First month, YYYY-MM (local time)")] = None,
    truth: Annotated[Path | None, typer.Option(help="Write the ground truth (planted hotspots, "
                                                     "slow stations, faults) as JSON here")] = None,
) -> None:
    """Generate a deterministic call history for Punjab as GeoParquet."""
    from geo.synth import DEFAULT_START, generate_calls, save_calls, save_truth  # noqa: PLC0415

    if truth is not None and truth.resolve() == out.resolve():
        raise typer.BadParameter("--truth must be another file than --out")
    began = time.perf_counter()
    with progress_bar("synth calls") as update:
        try:
            frame, facts = generate_calls(months, seed, scale, start or DEFAULT_START,
                                          progress=lambda step, f: update(step, 0.9 * f))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        generated = time.perf_counter() - began
        update("writing GeoParquet", 0.92)
        save_calls(frame, out)
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
        + (f"; truth → {truth}" if truth is not None else ""))


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
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    if report.sent and report.succeeded == 0:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- load

LOAD_ACTOR = "safecity synth load"
"""Who the loaded rows say created them (``created_by``, event ``actor``)."""
LOAD_ROLE = "admin"
LOAD_METHOD = "synth"
"""``calls.method`` of loaded calls: the generator routed them; its method is not kept."""
LOAD_CHUNK = 50_000
"""Calls prepared (and copied) per step: bounds memory at full scale."""
SQLITE_BATCH = 5_000
"""Rows per ``executemany`` on the embedded SQLite file."""
LOAD_NAMESPACE = __import__("uuid").UUID("6f1c2e0a-5b7d-4c1e-9a55-3d2f0c7b8e41")
"""UUID5 namespace: a call's id is derived from its Idempotency-Key, so loads are idempotent."""

CALL_COLUMNS = ("id", "idempotency_key", "request_hash", "status", "category", "serious", "lat",
                "lon", "radius_m", "caller_phone", "description", "received_at", "station_code",
                "tehsil_code", "district_code", "region_code", "boundary_set", "method",
                "out_of_coverage", "distance_m", "unstaffed", "created_by", "created_at",
                "updated_at", "h3_r9")
EVENT_COLUMNS = ("call_id", "type", "at", "recorded_at", "from_status", "status", "station_code",
                 "tehsil_code", "district_code", "region_code", "reason", "actor", "role",
                 "snapshot")
_LIFECYCLE = (("acknowledged", "acknowledged_at"), ("dispatched", "dispatched_at"),
              ("on_scene", "on_scene_at"), ("closed", "closed_at"))


@dataclass
class LoadReport:
    """What a load wrote: calls new to the database, calls already there, their events."""

    backend: str
    calls_in_file: int
    inserted: int = 0
    already_present: int = 0
    events: int = 0
    elapsed_s: float = 0.0


def _event_frame(calls: pd.DataFrame) -> pd.DataFrame:
    """Every call's trail as rows ``(row, seq, type, at, status, reason)``, in trail order.

    ``received`` first, then the lifecycle times the history has, in the state machine's
    order (not sorted by time: an on-scene time before dispatch is a data fault the
    response code must see, so it is kept as recorded). Hoax and dropped calls are
    ``cancelled`` at their close time with the class as reason. Information calls are
    answered on the phone: acknowledged and closed at their close time, as the state
    machine requires an acknowledgement before a close.
    """
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    from geo.categories import load_categories  # noqa: PLC0415

    klass = dict(zip(*(load_categories()[c].tolist() for c in ("code", "call_class")), strict=True))
    call_class = calls["category"].astype(str).map(klass).fillna("case").to_numpy()
    rows = np.arange(len(calls))
    parts = [pd.DataFrame({"row": rows, "seq": 0, "type": "received", "at": calls["received_at"].to_numpy(),
                           "reason": None})]
    cancelled = np.isin(call_class, ("hoax", "dropped")) & calls["closed_at"].notna().to_numpy()
    information = (call_class == "information") & calls["closed_at"].notna().to_numpy()
    for seq, (kind, column) in enumerate(_LIFECYCLE, start=1):
        at = calls[column]
        has = at.notna().to_numpy() & ~cancelled
        if kind in ("acknowledged", "closed"):
            at = at.where(~pd.Series(information, index=calls.index), calls["closed_at"])
            has |= information
        parts.append(pd.DataFrame({"row": rows[has], "seq": seq, "type": kind,
                                   "at": at.to_numpy()[has], "reason": None}))
    parts.append(pd.DataFrame({"row": rows[cancelled], "seq": 9, "type": "cancelled",
                               "at": calls["closed_at"].to_numpy()[cancelled],
                               "reason": calls["category"].astype(str).to_numpy()[cancelled]}))
    events = pd.concat(parts, ignore_index=True).sort_values(["row", "seq"], kind="stable")
    events["status"] = events["type"]
    events["from_status"] = events.groupby("row")["status"].shift(1)
    return events.reset_index(drop=True)


def prepare_history(calls: pd.DataFrame, boundary_set: str, areas: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of ``calls`` and ``call_events`` for a generated history (columns
    :data:`CALL_COLUMNS` and :data:`EVENT_COLUMNS`).

    A call's id is the UUID5 of its Idempotency-Key (the key ``synth replay`` sends), so
    loading a file twice, or loading what was replayed, finds the same calls. Each event
    carries the call as it stood after it (the wire form the feeds replay), built with
    the call service's own schema; the request hash is the service's, so a later replay
    of the same call is recognised as the same request.
    """
    import uuid  # noqa: PLC0415

    import msgspec  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    from api.domain.calls.categories import Categories  # noqa: PLC0415
    from api.domain.calls.lifecycle import allowed_events  # noqa: PLC0415
    from api.domain.calls.schemas import Call, CallCreate  # noqa: PLC0415
    from api.domain.calls.services import H3_RES as DUPLICATE_CELL_RES  # noqa: PLC0415
    from api.domain.calls.services import _request_hash  # noqa: PLC0415 -- one hash rule
    from geo.h3cells import latlng_to_cells  # noqa: PLC0415
    from geo.synth import idempotency_key  # noqa: PLC0415

    categories = Categories()
    events = _event_frame(calls)
    last = events.groupby("row").agg(status=("status", "last"), updated_at=("at", "max"))
    received = pd.to_datetime(calls["received_at"], utc=True)
    keys, ids, hashes = [], [], []
    columns = (calls["call_id"].tolist(), received.tolist(), calls["lat"].tolist(),
               calls["lon"].tolist(), calls["category"].astype(str).tolist(),
               calls["caller_phone"].tolist())
    for call_id, at, lat, lon, category, phone in zip(*columns, strict=True):
        key = idempotency_key(int(call_id), at, float(lat), float(lon), category)
        keys.append(key)
        ids.append(uuid.uuid5(LOAD_NAMESPACE, key))
        body = CallCreate(lat=float(lat), lon=float(lon), category=category,
                          caller_phone=phone if isinstance(phone, str) and phone else None)
        hashes.append(_request_hash(body, at.to_pydatetime()))
    del columns
    codes = {level: calls[f"{level}_code"].astype(str).tolist()
             for level in ("station", "tehsil", "district", "region")}
    rows = pd.DataFrame({
        "id": ids, "idempotency_key": keys, "request_hash": hashes,
        "status": last["status"].to_numpy(), "category": calls["category"].astype(str).to_numpy(),
        "serious": calls["serious"].astype(bool).to_numpy(),
        "lat": calls["lat"].to_numpy(dtype=float), "lon": calls["lon"].to_numpy(dtype=float),
        "radius_m": None,
        "caller_phone": calls["caller_phone"].to_numpy(), "description": None,
        "received_at": received.to_numpy(), **{f"{k}_code": v for k, v in codes.items()},
        "boundary_set": boundary_set, "method": LOAD_METHOD,
        "out_of_coverage": calls["out_of_coverage"].astype(bool).to_numpy(), "distance_m": None,
        "unstaffed": False, "created_by": LOAD_ACTOR, "created_at": received.to_numpy(),
        "updated_at": pd.to_datetime(last["updated_at"], utc=True).to_numpy(),
        # the call service's duplicate search reads the resolution-9 cell of every call
        "h3_r9": latlng_to_cells(calls["lat"].to_numpy(dtype=float),
                                 calls["lon"].to_numpy(dtype=float), DUPLICATE_CELL_RES).astype(np.int64),
    })

    encoder = msgspec.json.Encoder()
    received_py = received.dt.to_pydatetime().tolist() if len(received) else []
    labels = {code: categories.label(code) for code in set(rows["category"].tolist())}
    names = {level: {code: areas.name(level, code) for code in set(values)}
             for level, values in codes.items()}
    received_allowed = list(allowed_events("received"))
    base = [
        Call(id=ident, status="received", category=category, category_label=labels[category],
             serious=serious, lat=lat, lon=lon, radius_m=None, received_at=when, created_at=when,
             updated_at=when, station_code=station, station_name=names["station"][station],
             tehsil_code=tehsil, tehsil_name=names["tehsil"][tehsil], district_code=district,
             district_name=names["district"][district], region_code=region,
             region_name=names["region"][region], method=LOAD_METHOD, out_of_coverage=outside,
             distance_m=None, sho_on_duty=None, unstaffed=False, duplicate_of=None,
             allowed_events=received_allowed,
             caller_phone=phone if isinstance(phone, str) and phone else None)
        for ident, category, serious, lat, lon, when, station, tehsil, district, region, outside, phone
        in zip(ids, rows["category"].tolist(), rows["serious"].tolist(), rows["lat"].tolist(),
               rows["lon"].tolist(), received_py, codes["station"], codes["tehsil"],
               codes["district"], codes["region"], rows["out_of_coverage"].tolist(),
               calls["caller_phone"].tolist(), strict=True)
    ]
    at = pd.to_datetime(events["at"], utc=True)
    allowed = {status: list(allowed_events(status)) for status in set(events["status"].tolist())}
    snapshots = [
        encoder.encode(msgspec.structs.replace(base[r], status=s, updated_at=t,
                                               allowed_events=allowed[s])).decode()
        for r, s, t in zip(events["row"].tolist(), events["status"].tolist(),
                           at.dt.to_pydatetime().tolist(), strict=True)
    ]
    row_index = events["row"].to_numpy()
    trail = pd.DataFrame({
        "call_id": [ids[r] for r in row_index], "type": events["type"].to_numpy(), "at": at.to_numpy(),
        "recorded_at": at.to_numpy(), "from_status": events["from_status"].to_numpy(),
        "status": events["status"].to_numpy(),
        **{f"{k}_code": [v[r] for r in row_index] for k, v in codes.items()},
        "reason": events["reason"].to_numpy(), "actor": LOAD_ACTOR, "role": LOAD_ROLE,
        "snapshot": snapshots, "seq": events["seq"].to_numpy(),
    })
    return rows, trail


def _copy_frame(cursor: Any, table: str, frame: pd.DataFrame) -> None:
    """``COPY table (columns) FROM STDIN`` as CSV written by Arrow (no per-row Python).

    Arrow writes nulls as empty unquoted fields (NULL to PostgreSQL) and strings quoted
    (an empty string stays empty), timestamps in ISO 8601 with their zone.
    """
    import io  # noqa: PLC0415

    import pyarrow as pa  # noqa: PLC0415
    from pyarrow import csv  # noqa: PLC0415

    frame = frame.copy()
    for name in ("id", "call_id"):
        if name in frame.columns:
            frame[name] = frame[name].astype(str)
    buffer = io.BytesIO()
    csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), buffer,
                  csv.WriteOptions(include_header=False))
    columns = ", ".join(frame.columns)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())


def _load_postgres(engine: Any, chunks: Any, report: LoadReport, update: Any) -> None:
    """Stage every chunk with COPY, then insert the new calls and only their events, in
    one transaction (``ON CONFLICT DO NOTHING`` on the keys: a second load adds nothing)."""
    call_cols = ", ".join(CALL_COLUMNS)
    event_cols = ", ".join(EVENT_COLUMNS)
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE _load_calls ON COMMIT DROP AS SELECT {call_cols} "
                        "FROM calls WITH NO DATA")
            cur.execute(f"CREATE TEMP TABLE _load_events ON COMMIT DROP AS SELECT {event_cols} "
                        "FROM call_events WITH NO DATA")
            cur.execute("ALTER TABLE _load_events ADD COLUMN seq integer")
            cur.execute("CREATE TEMP TABLE _load_new (id uuid PRIMARY KEY) ON COMMIT DROP")
            for rows, trail, fraction in chunks:
                _copy_frame(cur, "_load_calls", rows[list(CALL_COLUMNS)])
                _copy_frame(cur, "_load_events", trail[[*EVENT_COLUMNS, "seq"]])
                update(f"copied {fraction:.0%}", 0.8 * fraction)
            update("inserting calls", 0.82)
            cur.execute("ANALYZE _load_calls")
            cur.execute("ANALYZE _load_events")
            cur.execute(
                f"WITH ins AS (INSERT INTO calls ({call_cols}, geom) SELECT {call_cols}, "
                "ST_SetSRID(ST_MakePoint(lon, lat), 4326) FROM _load_calls "
                "ON CONFLICT DO NOTHING RETURNING id) INSERT INTO _load_new SELECT id FROM ins")
            report.inserted = cur.rowcount
            cur.execute("ANALYZE _load_new")
            update("inserting events", 0.9)
            cur.execute(
                f"INSERT INTO call_events ({event_cols}) SELECT {', '.join('e.' + c for c in EVENT_COLUMNS)} "
                "FROM _load_events e JOIN _load_new n ON n.id = e.call_id ORDER BY e.at, e.call_id, e.seq")
            report.events = cur.rowcount
            cur.execute("ANALYZE calls")
        conn.commit()
    except BaseException:
        raw.driver_connection.rollback()
        raise
    finally:
        raw.close()


def _load_sqlite(engine: Any, chunks: Any, report: LoadReport, update: Any) -> None:
    """Insert chunk by chunk with ``executemany`` in one ``IMMEDIATE`` transaction; calls
    already present (by id or key) are left as they are, and so are their events."""
    from sqlalchemy import select  # noqa: PLC0415
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

    from api.db.call_models import CallEventRecord, CallRecord  # noqa: PLC0415
    from api.db.engine import SQLITE_BEGIN_OPTION  # noqa: PLC0415

    calls_table: Any = CallRecord.__table__
    events_table: Any = CallEventRecord.__table__
    with engine.connect().execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"}) as conn, conn.begin():
        for rows, trail, fraction in chunks:
            new_rows = []
            for start in range(0, len(rows), SQLITE_BATCH):
                batch = rows.iloc[start:start + SQLITE_BATCH]
                present = set(conn.execute(select(calls_table.c.id).where(
                    calls_table.c.id.in_(batch["id"].tolist()))).scalars())
                present |= set(conn.execute(select(calls_table.c.id).where(
                    calls_table.c.idempotency_key.in_(batch["idempotency_key"].tolist()))).scalars())
                fresh = batch[~batch["id"].isin(present)]
                if fresh.empty:
                    continue
                records = fresh.to_dict("records")
                for record, lat, lon in zip(records, fresh["lat"].tolist(), fresh["lon"].tolist(),
                                            strict=True):
                    record["geom"] = f"SRID=4326;POINT({lon!r} {lat!r})"
                    for name in ("received_at", "created_at", "updated_at"):
                        record[name] = record[name].to_pydatetime()
                conn.execute(sqlite_insert(calls_table).on_conflict_do_nothing(), records)
                new_rows.append(fresh["id"])
            if new_rows:
                new_ids = set().union(*(set(s.tolist()) for s in new_rows))
                events = trail[trail["call_id"].isin(new_ids)].sort_values(["at", "seq"], kind="stable")
                records = events[list(EVENT_COLUMNS)].to_dict("records")
                for record in records:
                    for name in ("at", "recorded_at"):
                        record[name] = record[name].to_pydatetime()
                    for name in ("from_status", "reason"):
                        if not isinstance(record[name], str):
                            record[name] = None
                for start in range(0, len(records), SQLITE_BATCH):
                    conn.execute(events_table.insert(), records[start:start + SQLITE_BATCH])
                report.inserted += len(new_ids)
                report.events += len(records)
            update(f"inserted {fraction:.0%}", fraction)


def load_history(calls: pd.DataFrame, engine: Any, *, boundaries: Any = None,
                 progress: Any = None, chunk: int = LOAD_CHUNK) -> LoadReport:
    """Write a generated history into ``calls`` and ``call_events`` of ``engine``'s database.

    PostgreSQL: COPY into temporary tables, then one ``INSERT … SELECT … ON CONFLICT DO
    NOTHING`` (seconds for a month at full scale). SQLite: ``executemany`` in batches.
    Both in a single transaction, so a failed load leaves nothing behind, and both
    idempotent on the call ids. The caller migrates the database first.
    """
    from api.domain.stations.areas import Areas  # noqa: PLC0415
    from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

    began = time.perf_counter()
    update = progress or (lambda _step, _fraction: None)
    boundaries = boundaries or punjab_boundary_set()
    areas = Areas(boundaries)
    calls = calls.sort_values(["received_at", "call_id"], kind="stable").reset_index(drop=True)
    report = LoadReport(backend=engine.dialect.name, calls_in_file=len(calls))

    def chunks() -> Any:
        for start in range(0, len(calls), chunk):
            part = calls.iloc[start:start + chunk]
            rows, trail = prepare_history(part, str(boundaries.version), areas)
            yield rows, trail, min(1.0, (start + len(part)) / max(len(calls), 1))

    if engine.dialect.name == "postgresql":
        _load_postgres(engine, chunks(), report, update)
    else:
        _load_sqlite(engine, chunks(), report, update)
    report.already_present = report.calls_in_file - report.inserted
    report.elapsed_s = time.perf_counter() - began
    update("done", 1.0)
    return report


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
        f"{report.already_present:,} already present ({report.backend}); "
        f"{report.elapsed_s:.1f} s, {rate:,.0f} calls/s")
