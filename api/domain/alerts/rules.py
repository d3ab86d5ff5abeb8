"""The four alert rules as plain functions of a call's facts and the time: no database.

The engine (:mod:`api.domain.alerts.engine`) reads the facts of due calls, asks these
rules what alerts *should* exist at ``now`` (:class:`Wanted`) and when to look again,
and reconciles that with the stored alerts. Because the answer depends only on stored
facts and ``now``, evaluating late (after a restart) raises what fell due while the
service was down, and evaluating twice changes nothing.

1. **Response breach**: a serious-crime call not on scene within its SLA (category and
   urban/rural station, :class:`geo.response.SlaTable`); cleared when the unit arrives
   or the call ends.
2. **Unacknowledged**: a call its station has not acknowledged; escalates up the chain
   at configurable delays (2 min station, 5 min district, 10 min region). A transfer
   starts a new wait at the new station (and ends the old one's alert).
3. **Emerging hotspot**: a cell that became a new or intensifying hot spot
   (:meth:`geo.emerging.EmergingHotSpots.alerts`), one alert per cell and time step.
4. **Repeat location / caller**: ``min_calls`` or more calls within ``radius_m`` of each
   other, or from one caller, within ``window``, linked duplicates left out.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
import pandas as pd

from api.areas import LEVELS
from geo import h3cells
from geo.distance import haversine_m

POLICY_FILE: Traversable = files("api.domain.alerts") / "alerts.toml"
"""The shipped policy (package data, so it is there however the package is installed)."""

ALERT_TYPES = ("response_breach", "unacknowledged", "emerging_hotspot", "repeat")
CALL_ALERT_TYPES = ("response_breach", "unacknowledged")
"""The types whose alerts are about one call, wanted or not from its own facts alone."""
ALERT_STATES = ("open", "acknowledged", "resolved")
COMMAND_LEVELS = LEVELS
"""Fine to coarse: an alert escalates along this chain."""


class AlertPolicyError(ValueError):
    """The alert configuration is malformed (the message says where)."""


@dataclass(frozen=True)
class AlertPolicy:
    """Every configurable number of the rules (defaults in :data:`POLICY_FILE`)."""

    unacknowledged_steps: tuple[tuple[timedelta, str], ...] = (
        (timedelta(minutes=2), "station"), (timedelta(minutes=5), "district"),
        (timedelta(minutes=10), "region"))
    breach_level: str = "district"
    repeat_level: str = "station"
    repeat_radius_m: float = 100.0
    repeat_window: timedelta = timedelta(hours=24)
    repeat_min_calls: int = 3
    hotspot_level: str = "district"
    hotspot_res: int = 8
    hotspot_step: str = "week"
    hotspot_steps: int = 10

    def __post_init__(self) -> None:
        steps = self.unacknowledged_steps
        if not steps:
            raise AlertPolicyError("unacknowledged needs at least one escalation step")
        delays = [d for d, _ in steps]
        if any(d <= timedelta(0) for d in delays) or delays != sorted(set(delays)):
            raise AlertPolicyError("unacknowledged delays must be positive and increasing")
        levels = [COMMAND_LEVELS.index(level) if level in COMMAND_LEVELS else -1
                  for _, level in steps]
        if -1 in levels or levels != sorted(levels):
            raise AlertPolicyError(f"escalation levels must be among {', '.join(COMMAND_LEVELS)} "
                                   "and go up the chain")
        for name in ("breach_level", "repeat_level", "hotspot_level"):
            if getattr(self, name) not in COMMAND_LEVELS:
                raise AlertPolicyError(f"{name} must be one of {', '.join(COMMAND_LEVELS)}")
        if self.repeat_min_calls < 2 or self.repeat_radius_m <= 0 or self.repeat_window <= timedelta(0):
            raise AlertPolicyError("repeat needs min_calls ≥ 2, a positive radius and window")

    @classmethod
    def load(cls, path: Path | Traversable | None = None) -> AlertPolicy:
        """The policy in ``path`` (default: the shipped :data:`POLICY_FILE`)."""
        path = path or POLICY_FILE
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise AlertPolicyError(f"cannot read alert policy {path}: {exc}") from exc
        try:
            unack, breach = raw["unacknowledged"], raw["response_breach"]
            repeat, hotspot = raw["repeat"], raw["emerging_hotspot"]
            steps = tuple((timedelta(minutes=float(m)), str(level))
                          for m, level in zip(unack["after_min"], unack["levels"], strict=True))
            return cls(unacknowledged_steps=steps, breach_level=str(breach["level"]),
                       repeat_level=str(repeat["level"]), repeat_radius_m=float(repeat["radius_m"]),
                       repeat_window=timedelta(hours=float(repeat["window_h"])),
                       repeat_min_calls=int(repeat["min_calls"]),
                       hotspot_level=str(hotspot["level"]), hotspot_res=int(hotspot["res"]),
                       hotspot_step=str(hotspot["step"]), hotspot_steps=int(hotspot["steps"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise AlertPolicyError(f"alert policy {path}: {exc!r}") from exc


@dataclass(frozen=True)
class CallFacts:
    """What the rules need to know about one call."""

    id: UUID
    received_at: datetime
    category: str
    serious: bool
    path: Mapping[str, str]
    """``{station, tehsil, district, region, province}`` codes."""
    sla_min: float | None
    """The on-scene limit of this call (category × urban/rural station), if any."""
    events: Sequence[tuple[str, datetime]] = ()
    """Lifecycle events in trail order (``received`` left out)."""
    paths: Sequence[Mapping[str, str]] = ()
    """The area path of each station wait, oldest first (the path each transfer left,
    then the current one); empty means the call was never transferred."""


@dataclass
class Wanted:
    """An alert the rules say should exist, as it should stand at ``now``."""

    type: str
    dedup_key: str
    due_at: datetime
    level: str
    escalation: int
    path: Mapping[str, str]
    summary: str
    call_ids: list[str]
    detail: dict[str, Any] = field(default_factory=dict)
    resolved_at: datetime | None = None
    resolution: str | None = None

    @property
    def code(self) -> str:
        return self.path[self.level]


@dataclass
class Verdict:
    """The rules' answer for one call."""

    wanted: list[Wanted]
    next_at: datetime | None


def _first(events: Sequence[tuple[str, datetime]], kinds: set[str], after: datetime | None = None
           ) -> datetime | None:
    for kind, at in events:
        if kind in kinds and (after is None or at >= after):
            return at
    return None


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:g} min"


def evaluate_call(call: CallFacts, now: datetime, policy: AlertPolicy) -> Verdict:
    """Breach and unacknowledged alerts of one call at ``now``, and when to look again."""
    wanted: list[Wanted] = []
    pending: list[datetime] = []
    ended = _first(call.events, {"closed", "cancelled"})
    call_id = str(call.id)

    # --- unacknowledged: one wait per station the call was given to
    starts = [call.received_at] + [at for kind, at in call.events if kind == "transferred"]
    for i, start in enumerate(starts):
        following = starts[i + 1] if i + 1 < len(starts) else None
        acked = None
        for kind, at in call.events:
            if kind == "acknowledged" and at >= start and (following is None or at < following):
                acked = at
                break
        stops = [t for t in (acked, following, ended) if t is not None]
        stop = min(stops) if stops else None
        fired = [step for step, (delay, _) in enumerate(policy.unacknowledged_steps)
                 if start + delay <= now and (stop is None or stop > start + delay)]
        if stop is None:
            pending += [start + d for d, _ in policy.unacknowledged_steps if start + d > now]
        if not fired:
            continue
        top = max(fired)
        delay, level = policy.unacknowledged_steps[top]
        path = _path_at(call, i)
        cleared = stop if stop is not None and stop <= now else None
        reason = ("acknowledged" if cleared == acked else
                  "transferred" if cleared == following else "call ended")
        wanted.append(Wanted(
            type="unacknowledged", dedup_key=f"unacknowledged:{call_id}:{start.isoformat()}",
            due_at=start + policy.unacknowledged_steps[0][0], level=level, escalation=top,
            path=path, call_ids=[call_id],
            summary=f"call not acknowledged by station {path['station']} after {_minutes(delay)}",
            detail={"waiting_since": start.isoformat(), "station": path["station"],
                    "escalated_after_min": delay.total_seconds() / 60},
            resolved_at=cleared, resolution=f"auto: {reason}" if cleared else None))

    # --- response breach (serious crimes with an SLA)
    if call.serious and call.sla_min is not None:
        due = call.received_at + timedelta(minutes=call.sla_min)
        on_scene = _first(call.events, {"on_scene"})
        cleared_by = [t for t in (on_scene, ended) if t is not None]
        cleared = min(cleared_by) if cleared_by else None
        if cleared is None and due > now:
            pending.append(due)
        elif due <= now and (cleared is None or cleared > due):
            path = dict(call.path)
            resolved = cleared if cleared is not None and cleared <= now else None
            late = (f"on scene after {_minutes(on_scene - call.received_at)}"
                    if resolved is not None and resolved == on_scene else "call ended")
            wanted.append(Wanted(
                type="response_breach", dedup_key=f"response_breach:{call_id}", due_at=due,
                level=policy.breach_level, escalation=0, path=path, call_ids=[call_id],
                summary=(f"{call.category} call not on scene within its "
                         f"{call.sla_min:g} min SLA (station {path['station']})"),
                detail={"sla_min": call.sla_min, "category": call.category},
                resolved_at=resolved, resolution=f"auto: {late}" if resolved else None))
    return Verdict(wanted, min(pending) if pending else None)


def _path_at(call: CallFacts, wait: int) -> dict[str, str]:
    """The call's area path during its ``wait``-th station wait (0: as first routed)."""
    if wait < len(call.paths):
        return dict(call.paths[wait])
    return dict(call.path)


# --------------------------------------------------------------------------- repeats
@dataclass(frozen=True)
class RepeatGroup:
    """The earlier calls one call repeats on one basis (``location``: near it; ``caller``:
    from its number), earliest first (by ``received_at``, then id), and the area path of
    the earliest, whose station's command the alert goes to."""

    basis: str
    ids: Sequence[str]
    path: Mapping[str, str]


@dataclass(frozen=True)
class RepeatCalls:
    """Calls as columns, for matching many calls against many earlier ones at once."""

    ids: npt.NDArray[np.object_]
    """Call ids as text."""
    t: npt.NDArray[np.float64]
    """``received_at`` in seconds since the epoch."""
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    cells: npt.NDArray[np.uint64]
    """Each call's ``h3_r9`` cell (:data:`api.db.call_models.CELL_RES`)."""
    phones: npt.NDArray[np.object_]
    """Caller numbers (``None`` where unknown)."""

    def __len__(self) -> int:
        return len(self.ids)


def _ranges(sorted_keys: npt.NDArray[Any], keys: npt.NDArray[Any], owners: npt.NDArray[np.int64]
            ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pairs ``(owner, position)`` of every position of ``sorted_keys`` equal to each key."""
    lo = np.searchsorted(sorted_keys, keys, side="left")
    hi = np.searchsorted(sorted_keys, keys, side="right")
    counts = hi - lo
    owner = np.repeat(owners, counts)
    starts = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return owner, starts + np.arange(int(counts.sum()))


def repeat_members(calls: RepeatCalls, others: RepeatCalls, policy: AlertPolicy, *,
                   ring: int) -> tuple[list[npt.NDArray[np.int64]], list[npt.NDArray[np.int64]]]:
    """For each of ``calls``: the positions in ``others`` of its location group (within
    ``repeat_radius_m``) and of its caller group (same number), both within the window
    before the call and without the call itself; the whole batch in a few array steps.

    Candidates by place come from the call's H3 disk of ``ring`` rings, which must hold
    every point within the radius (:data:`api.db.call_models.NEAR_RING` does for 250 m).
    """
    n = len(calls)
    empty: list[npt.NDArray[np.int64]] = [np.empty(0, np.int64)] * n
    if n == 0 or len(others) == 0:
        return list(empty), list(empty)
    window = policy.repeat_window.total_seconds()

    def kept(call: npt.NDArray[np.int64], other: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        inside: npt.NDArray[np.bool_] = ((others.t[other] >= calls.t[call] - window)
                                         & (others.t[other] <= calls.t[call])
                                         & (others.ids[other] != calls.ids[call]))
        return inside

    def grouped(call: npt.NDArray[np.int64], other: npt.NDArray[np.int64]
                ) -> list[npt.NDArray[np.int64]]:
        order = np.lexsort((other, call))
        call, other = call[order], other[order]
        return np.split(other, np.searchsorted(call, np.arange(1, n)))

    # by place: the disk cells of each call against the others' cells
    by_cell = np.argsort(others.cells, kind="stable")
    origin, disk = h3cells.grid_disk_pairs(calls.cells, ring)
    call, at = _ranges(others.cells[by_cell], disk, origin)
    other = by_cell[at]
    keep = kept(call, other)
    call, other = call[keep], other[keep]
    close = haversine_m(calls.lat[call], calls.lon[call], others.lat[other], others.lon[other])
    near = close <= policy.repeat_radius_m
    location = grouped(call[near], other[near])
    # by caller: the same number
    known = np.flatnonzero(calls.phones != None)  # noqa: E711 (element-wise)
    listed = np.flatnonzero(others.phones != None)  # noqa: E711
    if len(known) and len(listed):
        codes, _ = pd.factorize(np.concatenate([others.phones[listed], calls.phones[known]]))
        other_codes, call_codes = codes[:len(listed)], codes[len(listed):]
        by_phone = np.argsort(other_codes, kind="stable")
        call, at = _ranges(other_codes[by_phone], call_codes, known.astype(np.int64))
        other = listed[by_phone[at]]
        keep = kept(call, other)
        caller = grouped(call[keep], other[keep])
    else:
        caller = list(empty)
    return location, caller


def repeat_alerts(call_id: str, received_at: datetime, groups: Sequence[RepeatGroup],
                  policy: AlertPolicy) -> list[Wanted]:
    """The repeat-location and repeat-caller alerts the call ``call_id`` completes or
    extends, given its groups (:func:`repeat_members`, earliest first). A group is the
    call plus the earlier calls within ``repeat_radius_m`` of it (or from its number); its
    alert is keyed by the group's earliest call, so every later call of the same cluster
    extends one alert instead of raising another."""
    out: list[Wanted] = []
    for group in groups:
        if len(group.ids) + 1 < policy.repeat_min_calls:
            continue
        ids = [*group.ids, call_id]
        where = (f"within {policy.repeat_radius_m:g} m" if group.basis == "location"
                 else "from one caller")
        out.append(Wanted(
            type="repeat", dedup_key=f"repeat:{group.basis}:{group.ids[0]}", due_at=received_at,
            level=policy.repeat_level, escalation=0, path=dict(group.path), call_ids=ids,
            summary=(f"{len(ids)} calls {where} in "
                     f"{policy.repeat_window.total_seconds() / 3600:g} h "
                     f"(station {group.path['station']})"),
            detail={"basis": group.basis, "radius_m": policy.repeat_radius_m,
                    "window_h": policy.repeat_window.total_seconds() / 3600}))
    return out


# --------------------------------------------------------------------------- hotspots
def hotspot_alerts(emerging: pd.DataFrame, paths: Sequence[Mapping[str, str]],
                   step_start: datetime, policy: AlertPolicy) -> list[Wanted]:
    """One alert per cell that is a new or intensifying hot spot in the step starting at
    ``step_start``; ``emerging`` is :meth:`EmergingHotSpots.alerts` and ``paths`` the
    area path of each of its cells (where its centre routes)."""
    out: list[Wanted] = []
    for row, path in zip(emerging.itertuples(index=False), paths, strict=True):
        cls = str(row.category)
        out.append(Wanted(
            type="emerging_hotspot", dedup_key=f"emerging_hotspot:{row.h3}:{step_start.date()}",
            due_at=step_start, level=policy.hotspot_level, escalation=0, path=dict(path),
            call_ids=[], summary=f"{cls.replace('_', ' ')} hot spot at cell {row.h3}",
            detail={"h3": str(row.h3), "class": cls, "res": policy.hotspot_res,
                    "step": policy.hotspot_step, "trend_tau": _float(row.trend_tau),
                    "trend_p": _float(row.trend_p)}))
    return out


def _float(value: Any) -> float | None:
    number = float(value)
    return None if np.isnan(number) else number
