"""Quality checks of a boundary set, before it is loaded or routed on.

A call router is only as right as its polygons: a gap leaves a caller with no station,
an overlap gives one caller two. :func:`check_boundary_set` checks every level
(province, region, district, tehsil, station) for

- invalid geometries (with GEOS's reason), empty or non-polygonal geometries;
- empty or duplicate codes, missing or unknown parent codes;
- **overlaps**: the area shared by two features of one level (siblings or not);
- **gaps**: the part of a parent not covered by its children (and of the province not
  covered by the regions);
- **children not nested** in their parent: the area (and share) of a child outside it.

Areas are measured in metres, each piece in the UTM zone of its own centre
(:func:`geo.crs.utm_epsg_array`), never in degrees. Set operations run on the source
coordinates (EPSG:4326), so borders that are shared vertex for vertex stay exact.

Threshold and sliver rules (NENA i3 style)
-----------------------------------------
Every gap piece, overlapping pair and out-of-parent part whose area is **at or above**
``area_threshold_m2`` (default 1,000 m²) is an **error** naming the codes and the area;
it is never changed automatically. Anything smaller is a **sliver**, a warning whose
``resolution`` says what this documented rule would do (``check`` itself never changes
a geometry):

- *gap sliver*: goes to the sibling (a child of the same parent) sharing the longest
  border with it, measured in metres; ties go to the smallest code; a sliver touching
  no sibling goes to the nearest one;
- *overlap sliver*: stays with the smaller code and is cut from the larger one;
- *out-of-parent sliver*: is clipped off the child (the parent's border wins).

Vectorised throughout: candidate pairs come from :class:`shapely.STRtree` index pairs and
every geometry operation runs on shapely arrays; the only Python loop is one
``union_all`` per parent.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from time import perf_counter
from typing import TYPE_CHECKING, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import Transformer

from geo.crs import WGS84, utm_epsg_array
from jurisdictions.boundaries import LEVELS, PARENT_COLUMN, BoundarySet

if TYPE_CHECKING:
    from rich.console import RenderableType

DEFAULT_THRESHOLD_M2 = 1000.0
"""NENA i3-style tolerance: gaps and overlaps at or above it are errors."""

QA_LEVELS = ("province", *LEVELS)
"""Levels checked, coarse to fine; each level's parent is the one before it."""

Severity = Literal["error", "warning"]
Kind = Literal[
    "no_crs",
    "empty_level",
    "invalid_geometry",
    "empty_geometry",
    "not_polygonal",
    "empty_code",
    "duplicate_code",
    "missing_parent",
    "unknown_parent",
    "overlap",
    "gap",
    "not_nested",
]

ObjArray = npt.NDArray[np.object_]
IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]

_POLYGON_TYPES = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


@dataclass(frozen=True)
class Finding:
    """One problem found, with enough detail to find it on a map and fix it."""

    level: str
    kind: Kind
    codes: tuple[str, ...]
    message: str
    severity: Severity
    area_m2: float | None = None
    share: float | None = None
    """Area as a fraction of the reference area (the parent for gaps, the smaller
    feature for overlaps, the child for out-of-parent parts)."""
    resolution: str | None = None
    """For slivers: what the documented rule would do (``check`` never applies it)."""
    location: tuple[float, float] | None = None
    """(lon, lat) of a point inside the problem area."""

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able values."""
        out = asdict(self)
        out["codes"] = list(self.codes)
        out["location"] = None if self.location is None else list(self.location)
        return out


@dataclass(frozen=True)
class QAReport:
    """The findings of :func:`check_boundary_set`, errors first."""

    version: str
    threshold_m2: float
    findings: tuple[Finding, ...]
    features: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        """True when nothing at or above the threshold (and no structural error) was found."""
        return not self.errors

    def summary(self) -> list[dict[str, object]]:
        """Findings counted per (severity, level, kind) with total and largest area."""
        groups: dict[tuple[str, str, str], list[Finding]] = {}
        for f in self.findings:
            groups.setdefault((f.severity, f.level, f.kind), []).append(f)
        rows = []
        for (severity, level, kind), items in groups.items():
            areas = [f.area_m2 for f in items if f.area_m2 is not None]
            rows.append({
                "severity": severity, "level": level, "kind": kind, "count": len(items),
                "total_area_m2": float(sum(areas)) if areas else None,
                "max_area_m2": float(max(areas)) if areas else None,
            })
        return rows

    def to_dict(self) -> dict[str, object]:
        """Everything in the report as plain JSON-able values."""
        return {
            "version": self.version,
            "ok": self.ok,
            "threshold_m2": self.threshold_m2,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "features": dict(self.features),
            "seconds": round(self.seconds, 3),
            "summary": self.summary(),
            "findings": [f.to_dict() for f in self.findings],
        }

    def __rich__(self, max_rows: int = 60) -> RenderableType:
        """A header, every error (up to ``max_rows``) and the warnings counted by kind."""
        from rich.console import Group  # noqa: PLC0415  (the domain does not need rich)
        from rich.table import Table  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415

        verdict = "[bold green]OK[/]" if self.ok else "[bold red]FAILED[/]"
        counts = ", ".join(f"{n:,} {level}{'' if n == 1 else 's'}"
                           for level, n in self.features.items())
        header = Text.from_markup(
            f"QA of boundary set [bold]{self.version}[/]: {verdict} — "
            f"{len(self.errors):,} errors, {len(self.warnings):,} warnings "
            f"(threshold {self.threshold_m2:,.0f} m²; {counts}; {self.seconds:.1f} s)"
        )
        parts: list[RenderableType] = [header]
        if self.errors:
            table = Table(title="Errors", title_justify="left", show_lines=False)
            for name, justify in (("level", "left"), ("kind", "left"), ("codes", "left"),
                                  ("area m²", "right"), ("share", "right"), ("message", "left")):
                table.add_column(name, justify=justify)  # type: ignore[arg-type]
            for f in self.errors[:max_rows]:
                table.add_row(f.level, f.kind, _short_codes(f.codes), _fmt_area(f.area_m2),
                              _fmt_share(f.share), f.message)
            parts.append(table)
            if len(self.errors) > max_rows:
                parts.append(Text(f"… and {len(self.errors) - max_rows:,} more errors "
                                  "(write them all with --json)"))
        if self.warnings:
            table = Table(title="Warnings (slivers and notes)", title_justify="left")
            for name, justify in (("level", "left"), ("kind", "left"), ("count", "right"),
                                  ("total m²", "right"), ("largest m²", "right"),
                                  ("example", "left")):
                table.add_column(name, justify=justify)  # type: ignore[arg-type]
            for row in self.summary():
                if row["severity"] != "warning":
                    continue
                example = next(f for f in self.warnings
                               if f.level == row["level"] and f.kind == row["kind"])
                table.add_row(str(row["level"]), str(row["kind"]), f"{row['count']:,}",
                              _fmt_area(row["total_area_m2"]),  # type: ignore[arg-type]
                              _fmt_area(row["max_area_m2"]),  # type: ignore[arg-type]
                              example.resolution or example.message)
            parts.append(table)
        return Group(*parts)


def _fmt_area(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _fmt_share(value: float | None) -> str:
    return "" if value is None else f"{value:.2%}"


def _short_codes(codes: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(codes[:limit])
    return shown + (f" (+{len(codes) - limit})" if len(codes) > limit else "")


# ---------------------------------------------------------------------- metric helpers
DENSIFY_DEG = 0.001
"""Longest edge (degrees, about 100 m) kept when projecting to measure.

Edges are straight in lon/lat (as PostGIS ``geometry(…, 4326)`` treats them) but bow
slightly in UTM. Projecting the vertices alone turns a sliver whose middle vertex lies
on a long lon/lat-straight edge into a phantom triangle (a 4 km edge gave 350 m² of
phantom area); densifying first keeps the measured shape the same shape (error under
0.01 m² per kilometre of edge)."""


@cache
def _to_utm(epsg: int) -> Transformer:
    return Transformer.from_crs(WGS84, f"EPSG:{epsg}", always_xy=True)


def to_metric(geoms: ObjArray, zone_lon: FloatArray | None = None) -> ObjArray:
    """Each geometry densified (:data:`DENSIFY_DEG`) and projected to the UTM zone of
    its own centre, or of ``zone_lon`` when given (metres).

    Missing and empty geometries pass through unchanged.
    """
    geoms = shapely.segmentize(np.asarray(geoms, dtype=object), DENSIFY_DEG)
    out = geoms.copy()
    present = np.flatnonzero(~shapely.is_missing(geoms) & ~shapely.is_empty(geoms))
    if not len(present):
        return out
    if zone_lon is None:
        bounds = shapely.bounds(geoms[present])
        zones = utm_epsg_array((bounds[:, 0] + bounds[:, 2]) / 2)
    else:
        zones = utm_epsg_array(np.asarray(zone_lon, dtype=float)[present])
    for epsg in np.unique(zones):
        transformer = _to_utm(int(epsg))

        def project(xy: FloatArray, t: Transformer = transformer) -> FloatArray:
            return np.column_stack(t.transform(xy[:, 0], xy[:, 1]))

        chosen = present[zones == epsg]
        out[chosen] = shapely.transform(geoms[chosen], project)
    return out


def area_m2(geoms: ObjArray) -> FloatArray:
    """Area in square metres of geometries in EPSG:4326 (0 for missing or empty)."""
    return np.nan_to_num(shapely.area(to_metric(geoms)), nan=0.0)


def length_m(geoms: ObjArray) -> FloatArray:
    """Length in metres of geometries in EPSG:4326 (0 for missing or empty)."""
    return np.nan_to_num(shapely.length(to_metric(geoms)), nan=0.0)


def _polygon_parts(geoms: ObjArray) -> tuple[ObjArray, IntArray]:
    """The polygons inside each geometry (collections included) and their owner index."""
    parts, owner = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    # A GeometryCollection's parts can be multi-part themselves; flatten once more.
    parts, inner = shapely.get_parts(parts, return_index=True)
    owner = owner[inner]
    keep = (shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & ~shapely.is_empty(parts)
    return parts[keep], owner[keep]


ROBUST_GRID_DEG = 1e-9
"""Snap-rounding grid (about 0.1 mm) used only when GEOS's floating overlay fails."""


def _overlay(op: Callable[..., ObjArray], a: ObjArray, b: ObjArray) -> ObjArray:
    """``op(a, b)`` element-wise; pairs GEOS cannot overlay in floating point are
    retried with snap rounding on :data:`ROBUST_GRID_DEG` so one bad pair cannot stop QA."""
    try:
        return op(a, b)
    except shapely.errors.GEOSException:
        out = np.empty(len(a), dtype=object)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            try:
                out[i] = op(x, y)
            except shapely.errors.GEOSException:
                out[i] = op(x, y, grid_size=ROBUST_GRID_DEG)
        return out


def _lonlat(points: ObjArray) -> list[tuple[float, float] | None]:
    xy = shapely.get_coordinates(points)
    return [(round(float(x), 7), round(float(y), 7)) for x, y in xy]


# ---------------------------------------------------------------------- layers
@dataclass
class _Layer:
    """One level ready for the geometric checks."""

    level: str
    codes: ObjArray
    """Code per row (stripped; ``""`` when empty)."""
    labels: ObjArray
    """Code, or ``row N`` when the code is empty: how a finding names the feature."""
    geoms: ObjArray
    """Usable geometry per row (repaired when invalid), None when unusable."""
    usable: npt.NDArray[np.bool_]
    area: FloatArray
    parent: IntArray
    """Row of the parent in the level above (-1 when missing or unknown)."""


def _codes_of(frame: pd.DataFrame, column: str) -> ObjArray:
    if column not in frame:
        return np.full(len(frame), "", dtype=object)
    values = frame[column]
    text = values.astype("string").str.strip().fillna("")
    return np.asarray(text.to_numpy(dtype=object), dtype=object)


def _prepare(frame: gpd.GeoDataFrame, level: str, findings: list[Finding]) -> _Layer:
    """Check codes and geometry validity of one level; repair a copy for what follows."""
    n = len(frame)
    codes = _codes_of(frame, "code")
    rows = np.arange(1, n + 1)
    labels = np.where(codes == "", np.char.add("row ", rows.astype(str)).astype(object), codes)
    if frame.crs is None:
        findings.append(Finding(level, "no_crs", (), f"the {level} layer has no CRS; read as "
                                "EPSG:4326", "error"))
        geoms = np.asarray(frame.geometry.values, dtype=object)
    elif frame.crs.to_epsg() != 4326:
        geoms = np.asarray(frame.geometry.to_crs(WGS84).values, dtype=object)
    else:
        geoms = np.asarray(frame.geometry.values, dtype=object)
    if n == 0:
        findings.append(Finding(level, "empty_level", (), f"the {level} layer has no features",
                                "warning"))

    for i in np.flatnonzero(codes == ""):
        findings.append(Finding(level, "empty_code", (str(labels[i]),),
                                f"{level} in row {i + 1} has an empty code", "error"))
    filled = pd.Series(codes[codes != ""])
    for code, count in filled.value_counts().items():
        if count > 1:
            where = ", ".join(str(r) for r in rows[codes == code])
            findings.append(Finding(level, "duplicate_code", (str(code),),
                                    f"{level} code {code} is used {count} times (rows {where})",
                                    "error"))

    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    type_ok = np.isin(shapely.get_type_id(geoms), [int(t) for t in _POLYGON_TYPES])
    for i in np.flatnonzero(missing):
        findings.append(Finding(level, "empty_geometry", (str(labels[i]),),
                                f"{level} {labels[i]} has no geometry", "error"))
    for i in np.flatnonzero(~missing & ~type_ok):
        findings.append(Finding(level, "not_polygonal", (str(labels[i]),),
                                f"{level} {labels[i]} is a {geoms[i].geom_type}, not a polygon",
                                "error"))
    candidate = ~missing & type_ok
    valid = np.zeros(n, dtype=bool)
    valid[candidate] = shapely.is_valid(geoms[candidate])
    bad = np.flatnonzero(candidate & ~valid)
    if len(bad):
        reasons = shapely.is_valid_reason(geoms[bad])
        repaired = shapely.make_valid(geoms[bad], method="structure", keep_collapsed=False)
        points = shapely.get_coordinates(shapely.point_on_surface(geoms[bad]))
        for j, i in enumerate(bad):
            location = (round(float(points[j, 0]), 7), round(float(points[j, 1]), 7))
            findings.append(Finding(level, "invalid_geometry", (str(labels[i]),),
                                    f"{level} {labels[i]} is invalid: {reasons[j]}", "error",
                                    location=location))
        geoms = geoms.copy()
        geoms[bad] = repaired
    usable = candidate & ~shapely.is_empty(geoms)
    geoms = geoms.copy()
    geoms[~usable] = None
    shapely.prepare(geoms[usable])
    return _Layer(level, codes, labels, geoms, usable, area_m2(geoms),
                  np.full(n, -1, dtype=np.intp))


def _link_parents(child: _Layer, frame: gpd.GeoDataFrame, parent: _Layer,
                  findings: list[Finding]) -> None:
    """Fill ``child.parent`` from the parent-code column; report missing and unknown ones."""
    if child.level == "region":
        child.parent[:] = 0 if len(parent.codes) else -1
        return
    column = PARENT_COLUMN[child.level]
    if column not in frame:
        findings.append(Finding(child.level, "missing_parent", (),
                                f"the {child.level} layer has no {column} column", "error"))
        return
    parent_codes = _codes_of(frame, column)
    first_row: dict[str, int] = {}
    for row, code in enumerate(parent.codes):
        if code and code not in first_row:
            first_row[code] = row
    lookup = pd.Series(first_row, dtype=np.intp)
    known = pd.Series(parent_codes).map(lookup)
    child.parent[:] = known.fillna(-1).to_numpy(dtype=np.intp)
    for i in np.flatnonzero(parent_codes == ""):
        findings.append(Finding(child.level, "missing_parent", (str(child.labels[i]),),
                                f"{child.level} {child.labels[i]} has no {column}", "error"))
    for i in np.flatnonzero((parent_codes != "") & (child.parent < 0)):
        findings.append(Finding(child.level, "unknown_parent",
                                (str(child.labels[i]), str(parent_codes[i])),
                                f"{child.level} {child.labels[i]} names {parent.level} "
                                f"{parent_codes[i]}, which does not exist", "error"))


# ---------------------------------------------------------------------- geometric checks
def _overlaps(layer: _Layer, threshold: float, findings: list[Finding]) -> None:
    """Pairs of one level whose interiors intersect, with the shared area."""
    rows = np.flatnonzero(layer.usable)
    if len(rows) < 2:
        return
    geoms = layer.geoms[rows]
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    inner = shapely.relate_pattern(geoms[left], geoms[right], "T********")
    left, right = rows[left[inner]], rows[right[inner]]
    if not len(left):
        return
    shared = _overlay(shapely.intersection, layer.geoms[left], layer.geoms[right])
    parts, owner = _polygon_parts(shared)
    part_area = area_m2(parts)
    pair_area = np.bincount(owner, weights=part_area, minlength=len(left))
    location = _largest_part_location(parts, owner, part_area, len(left))
    for k in np.flatnonzero(pair_area > 0):
        i, j = int(left[k]), int(right[k])
        a, b = sorted((str(layer.labels[i]), str(layer.labels[j])))
        smaller = min(layer.area[i], layer.area[j])
        share = float(pair_area[k] / smaller) if smaller > 0 else None
        siblings = "" if layer.parent[i] == layer.parent[j] else " (different parents)"
        area = float(pair_area[k])
        if area >= threshold:
            findings.append(Finding(
                layer.level, "overlap", (a, b),
                f"{layer.level}s {a} and {b} overlap by {area:,.0f} m²{siblings}", "error",
                area_m2=area, share=share, location=location[k]))
        else:
            findings.append(Finding(
                layer.level, "overlap", (a, b),
                f"overlap sliver of {area:.3g} m² between {layer.level}s {a} and {b}{siblings}",
                "warning", area_m2=area, share=share,
                resolution=f"stays with {a} (smaller code), cut from {b}", location=location[k]))


def _largest_part_location(parts: ObjArray, owner: IntArray, part_area: FloatArray,
                           n: int) -> list[tuple[float, float] | None]:
    """A point inside the largest polygon part of each of ``n`` owners (None if none)."""
    out: list[tuple[float, float] | None] = [None] * n
    if not len(parts):
        return out
    order = np.lexsort((-part_area, owner))
    first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
    points = _lonlat(shapely.point_on_surface(parts[first]))
    for k, point in zip(owner[first], points, strict=True):
        out[int(k)] = point
    return out


def _multi(geoms: ObjArray) -> ObjArray:
    """Polygons promoted to one-part MultiPolygons (for exact comparisons)."""
    out = np.asarray(geoms, dtype=object).copy()
    single = shapely.get_type_id(out) == shapely.GeometryType.POLYGON
    out[single] = shapely.multipolygons(out[single].reshape(-1, 1))
    return out


def _children_by_parent(child: _Layer, n_parents: int) -> list[IntArray]:
    rows = np.flatnonzero(child.usable & (child.parent >= 0))
    order = np.argsort(child.parent[rows], kind="stable")
    rows = rows[order]
    bounds = np.searchsorted(child.parent[rows], np.arange(n_parents + 1))
    return [rows[bounds[p]:bounds[p + 1]] for p in range(n_parents)]


def _gaps(child: _Layer, parent: _Layer, threshold: float, findings: list[Finding]) -> None:
    """Parts of each parent not covered by its children."""
    groups = _children_by_parent(child, len(parent.codes))
    parents = np.flatnonzero(parent.usable)
    if not len(parents):
        return
    unions = np.array([shapely.union_all(child.geoms[groups[p]]) for p in parents], dtype=object)
    # Fast path: a union identical vertex for vertex to its parent has no gap. Overlaying
    # near-identical detailed borders is GEOS's slowest case (seconds for the districts).
    same = shapely.equals_exact(shapely.normalize(_multi(parent.geoms[parents])),
                                shapely.normalize(_multi(unions)), tolerance=0.0)
    parents, unions = parents[~same], unions[~same]
    holes = _overlay(shapely.difference, parent.geoms[parents], unions)
    parts, owner = _polygon_parts(holes)
    if not len(parts):
        return
    owner = parents[owner]
    part_area = area_m2(parts)
    keep = part_area > 0
    parts, owner, part_area = parts[keep], owner[keep], part_area[keep]
    if not len(parts):
        return
    neighbours, assigned = _gap_neighbours(parts, owner, child)
    points = _lonlat(shapely.point_on_surface(parts))
    for k in range(len(parts)):
        p = int(owner[k])
        pcode = str(parent.labels[p])
        area = float(part_area[k])
        share = float(area / parent.area[p]) if parent.area[p] > 0 else None
        near = neighbours[k]
        if area >= threshold:
            what = (f"not covered by any of its {child.level}s" if not len(groups[p])
                    else f"not covered by its {child.level}s")
            beside = f" (beside {', '.join(near)})" if near else ""
            findings.append(Finding(
                child.level, "gap", (pcode, *near),
                f"gap of {area:,.0f} m² in {parent.level} {pcode} {what}{beside}", "error",
                area_m2=area, share=share, location=points[k]))
        else:
            rule = assigned[k] or f"no {child.level} of {pcode} to take it"
            findings.append(Finding(
                child.level, "gap", (pcode, *near),
                f"gap sliver of {area:.3g} m² in {parent.level} {pcode}", "warning",
                area_m2=area, share=share, resolution=rule, location=points[k]))


def _gap_neighbours(parts: ObjArray, owner: IntArray,
                    child: _Layer) -> tuple[list[list[str]], list[str | None]]:
    """Per gap part: the sibling codes touching it, and what the sliver rule does with it."""
    n = len(parts)
    neighbours: list[list[str]] = [[] for _ in range(n)]
    assigned: list[str | None] = [None] * n
    rows = np.flatnonzero(child.usable & (child.parent >= 0))
    if not len(rows):
        return neighbours, assigned
    tree = shapely.STRtree(child.geoms[rows])
    part_idx, hit = tree.query(parts, predicate="intersects")
    sibling = rows[hit]
    same = child.parent[sibling] == owner[part_idx]
    part_idx, sibling = part_idx[same], sibling[same]
    border = length_m(_overlay(shapely.intersection, shapely.boundary(parts[part_idx]),
                               child.geoms[sibling]))
    pairs = pd.DataFrame({"part": part_idx, "code": child.labels[sibling].astype(str),
                          "border": border})
    for part, codes in zip(part_idx.tolist(), pairs["code"], strict=True):
        neighbours[part].append(codes)
    neighbours = [sorted(set(near)) for near in neighbours]
    best = (pairs[pairs["border"] > 0]
            .sort_values(["part", "border", "code"], ascending=[True, False, True])
            .drop_duplicates("part"))
    for part, code in zip(best["part"], best["code"], strict=True):
        assigned[int(part)] = f"goes to {code} (longest shared border)"
    # Slivers that share no border with a sibling go to the nearest one.
    lonely = np.array([k for k in range(n) if assigned[k] is None], dtype=np.intp)
    if len(lonely):
        lone = pd.DataFrame({"part": lonely, "parent": owner[lonely]})
        sibs = pd.DataFrame({"row": rows, "parent": child.parent[rows]})
        cand = lone.merge(sibs, on="parent")
        if len(cand):
            part_geoms = parts[cand["part"].to_numpy()]
            bounds = shapely.bounds(part_geoms)
            zone_lon = (bounds[:, 0] + bounds[:, 2]) / 2  # both sides in the part's zone
            cand["distance"] = shapely.distance(
                to_metric(part_geoms, zone_lon),
                to_metric(child.geoms[cand["row"].to_numpy()], zone_lon),
            )
            cand["code"] = child.labels[cand["row"].to_numpy()].astype(str)
            nearest = (cand.sort_values(["part", "distance", "code"])
                       .drop_duplicates("part"))
            for part, code in zip(nearest["part"], nearest["code"], strict=True):
                assigned[int(part)] = f"goes to {code} (nearest {child.level}, no shared border)"
    return neighbours, assigned


def _nesting(child: _Layer, parent: _Layer, threshold: float, findings: list[Finding]) -> None:
    """The area of each child outside its own parent."""
    rows = np.flatnonzero(child.usable & (child.parent >= 0))
    rows = rows[parent.usable[child.parent[rows]]]
    if not len(rows):
        return
    homes = parent.geoms[child.parent[rows]]
    inside = shapely.covers(homes, child.geoms[rows])
    rows, homes = rows[~inside], homes[~inside]
    if not len(rows):
        return
    outside = _overlay(shapely.difference, child.geoms[rows], homes)
    parts, owner = _polygon_parts(outside)
    part_area = area_m2(parts)
    total = np.bincount(owner, weights=part_area, minlength=len(rows))
    location = _largest_part_location(parts, owner, part_area, len(rows))
    errors = np.flatnonzero(total >= threshold)
    best_home = dict(zip(errors.tolist(), _best_parent(child.geoms[rows[errors]], parent),
                         strict=True))
    for k in np.flatnonzero(total > 0):
        i = int(rows[k])
        code, pcode = str(child.labels[i]), str(parent.labels[child.parent[i]])
        area = float(total[k])
        share = float(area / child.area[i]) if child.area[i] > 0 else None
        pct = "" if share is None else f" ({share:.1%} of it)"
        if area >= threshold:
            hint = best_home.get(int(k))
            mostly = f"; it lies mostly in {parent.level} {hint}" if hint and hint != pcode else ""
            findings.append(Finding(
                child.level, "not_nested", (code, pcode),
                f"{child.level} {code} has {area:,.0f} m²{pct} outside its {parent.level} "
                f"{pcode}{mostly}", "error", area_m2=area, share=share, location=location[k]))
        else:
            findings.append(Finding(
                child.level, "not_nested", (code, pcode),
                f"sliver of {area:.3g} m² of {child.level} {code} outside {parent.level} {pcode}",
                "warning", area_m2=area, share=share,
                resolution=f"clipped off {code} ({parent.level} {pcode}'s border wins)",
                location=location[k]))


def _best_parent(geoms: ObjArray, parent: _Layer) -> list[str | None]:
    """For each geometry, the parent-level feature holding most of its area (None if none)."""
    out: list[str | None] = [None] * len(geoms)
    rows = np.flatnonzero(parent.usable)
    if not len(geoms) or not len(rows):
        return out
    g_idx, hit = shapely.STRtree(parent.geoms[rows]).query(geoms, predicate="intersects")
    shared = area_m2(_overlay(shapely.intersection, geoms[g_idx], parent.geoms[rows[hit]]))
    frame = pd.DataFrame({"g": g_idx, "code": parent.labels[rows[hit]].astype(str),
                          "area": shared})
    best = frame[frame["area"] > 0].sort_values(["g", "area"], ascending=[True, False])
    for g, code in zip(best["g"].drop_duplicates(), best.drop_duplicates("g")["code"], strict=True):
        out[int(g)] = str(code)
    return out


# ---------------------------------------------------------------------- entry point
_SEVERITY_ORDER = {"error": 0, "warning": 1}
_LEVEL_ORDER = {level: i for i, level in enumerate(QA_LEVELS)}


def _province_frame(boundaries: BoundarySet) -> gpd.GeoDataFrame:
    """The province as one row (several outline rows are dissolved into one)."""
    province = boundaries.province
    if len(province) <= 1:
        return province
    code = _codes_of(province, "code")[0]
    geometry = shapely.union_all(np.asarray(province.geometry.values, dtype=object))
    return gpd.GeoDataFrame({"code": [code]}, geometry=[geometry], crs=province.crs)


def check_boundary_set(boundaries: BoundarySet,
                       area_threshold_m2: float = DEFAULT_THRESHOLD_M2,
                       progress: Callable[[str, float], None] | None = None) -> QAReport:
    """Check every level of ``boundaries``; never changes a geometry.

    Parameters
    ----------
    boundaries
        The set to check (frames in EPSG:4326 as :class:`BoundarySet` documents).
    area_threshold_m2
        Gaps, overlaps and out-of-parent parts at or above this area are errors;
        smaller ones are slivers (warnings) with the rule's resolution.
    progress
        Optional ``(step, fraction)`` callback for long runs.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from jurisdictions.boundaries import BoundarySet
    >>> def frame(rows, parent=None):
    ...     data = {"code": [r[0] for r in rows], "name": [r[0] for r in rows]}
    ...     if parent:
    ...         data[parent] = [r[1] for r in rows]
    ...     return gpd.GeoDataFrame(data, geometry=[r[-1] for r in rows], crs=4326)
    >>> box = shapely.box
    >>> sq = box(72.0, 30.0, 72.2, 30.2)
    >>> bs = BoundarySet(
    ...     province=frame([("P", sq)]), regions=frame([("R", sq)]),
    ...     districts=frame([("D", "R", sq)], "region_code"),
    ...     tehsils=frame([("T1", "D", box(72.0, 30.0, 72.1, 30.2)),
    ...                    ("T2", "D", box(72.1, 30.0, 72.2, 30.2))], "district_code"),
    ...     stations=frame([("S1", "T1", box(72.0, 30.0, 72.1, 30.2)),
    ...                     ("S2", "T2", box(72.1, 30.0, 72.2, 30.1))], "tehsil_code"),
    ...     version="demo")
    >>> report = check_boundary_set(bs)
    >>> report.ok, [(f.kind, f.codes, round(f.area_m2 / 1e6)) for f in report.errors]
    (False, [('gap', ('T2', 'S2'), 107)])
    """
    started = perf_counter()
    threshold = float(area_threshold_m2)
    if not math.isfinite(threshold) or threshold < 0:
        raise ValueError(f"area_threshold_m2 must be a non-negative number, not {area_threshold_m2!r}")
    report = progress or (lambda _step, _fraction: None)
    findings: list[Finding] = []
    frames = {"province": _province_frame(boundaries)}
    frames.update({level: boundaries.layer(level) for level in LEVELS})
    layers: dict[str, _Layer] = {}
    for level in QA_LEVELS:
        report(f"codes and validity: {level}", 0.1 * _LEVEL_ORDER[level] / len(QA_LEVELS))
        layers[level] = _prepare(frames[level], level, findings)
    for parent_level, level in zip(QA_LEVELS, LEVELS, strict=False):
        _link_parents(layers[level], frames[level], layers[parent_level], findings)
    steps = len(LEVELS)
    for k, (parent_level, level) in enumerate(zip(QA_LEVELS, LEVELS, strict=False)):
        child, parent = layers[level], layers[parent_level]
        report(f"overlaps: {level}", 0.1 + 0.9 * k / steps)
        _overlaps(child, threshold, findings)
        if len(child.codes) == 0:
            continue  # an empty level is one warning, not a gap in every parent
        report(f"gaps: {level}", 0.1 + 0.9 * (k + 0.4) / steps)
        _gaps(child, parent, threshold, findings)
        report(f"nesting: {level}", 0.1 + 0.9 * (k + 0.7) / steps)
        _nesting(child, parent, threshold, findings)
    report("done", 1.0)
    findings.sort(key=lambda f: (_SEVERITY_ORDER[f.severity], _LEVEL_ORDER[f.level], f.kind,
                                 -(f.area_m2 or 0.0), f.codes))
    return QAReport(
        version=boundaries.version,
        threshold_m2=threshold,
        findings=tuple(findings),
        features={level: len(frames[level]) for level in QA_LEVELS},
        seconds=perf_counter() - started,
    )


def kinds(report: QAReport) -> Counter[tuple[str, str, str]]:
    """Count findings by (severity, level, kind); handy in tests and notebooks."""
    return Counter((f.severity, f.level, f.kind) for f in report.findings)
