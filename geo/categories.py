"""The helpline-15 call categories, read one way by every package.

``data/categories.csv`` is the single table of call categories: whether a category is a
serious crime, its on-scene SLAs for urban and rural stations, the group used to link
duplicate calls, the weight used for Safe City planning demand, its volume in the
reference month (PUCAR-15, April 2020) and its hour-of-day profile key. Its sources and
assumptions are in ``data/CATEGORIES.md``. :func:`read_categories` validates a table
file once and caches it; callers get a fresh copy each time, so nobody can alter the cache.
The library takes the file as an argument; the application knows where the shipped one is
(``api.shipped.load_categories``).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

CALL_CLASSES = ("case", "information", "hoax", "dropped")
"""``case``: dispatched to a station; ``information``: answered by the call taker, no
dispatch; ``hoax`` and ``dropped``: their own classes (they matter for load and for the
"calls vs cases" statistics)."""

GENUINE_CLASSES = ("case", "information")
"""Classes counted as genuine calls; ``share`` is a share among these."""

COLUMNS = ("code", "label", "call_class", "serious", "sla_urban_min", "sla_rural_min",
           "related_group", "seriousness_weight", "basis_calls", "share", "peak_profile")

SHARE_TOLERANCE = 1e-4
"""Shares are written with 6 decimals; they must sum to 1 within this."""

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


class CategoryTableError(ValueError):
    """The category table is missing, malformed or inconsistent (the message says where)."""


def _as_bool(values: pd.Series, column: str) -> pd.Series:
    text = values.astype(str).str.strip().str.lower()
    bad = ~text.isin(["true", "false"])
    if bad.any():
        raise CategoryTableError(f"{column}: expected true/false, found {sorted(set(text[bad]))}")
    return text == "true"


def validate_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Check a raw category table and return it with proper dtypes.

    Raises :class:`CategoryTableError` naming the first rule a row breaks.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise CategoryTableError(f"category table lacks column(s) {', '.join(missing)}")
    out = pd.DataFrame({c: frame[c] for c in COLUMNS}).reset_index(drop=True)
    for column in ("code", "label", "call_class", "related_group", "peak_profile"):
        if out[column].isna().any():
            raise CategoryTableError(f"{column}: empty value in row(s) "
                                     f"{out.index[out[column].isna()].tolist()}")
        out[column] = out[column].astype(str).str.strip()
    bad_codes = [c for c in out["code"] if not _SNAKE.match(c)]
    if bad_codes:
        raise CategoryTableError(f"codes must be snake_case: {bad_codes}")
    if out["code"].duplicated().any():
        raise CategoryTableError(f"duplicate codes: {sorted(out.loc[out['code'].duplicated(), 'code'])}")
    bad_class = sorted(set(out["call_class"]) - set(CALL_CLASSES))
    if bad_class:
        raise CategoryTableError(f"call_class must be one of {CALL_CLASSES}, found {bad_class}")
    absent = [c for c in CALL_CLASSES if c not in set(out["call_class"])]
    if absent:
        raise CategoryTableError(f"no category of class {absent}")
    out["serious"] = _as_bool(out["serious"], "serious")
    for column in ("sla_urban_min", "sla_rural_min", "seriousness_weight", "basis_calls", "share"):
        out[column] = pd.to_numeric(out[column], errors="raise").astype("float64")
    case = out["call_class"] == "case"
    if (out["serious"] & ~case).any():
        raise CategoryTableError("only categories of class 'case' can be serious")
    sla = out[["sla_urban_min", "sla_rural_min"]]
    if sla[case].isna().any().any() or (sla[case] <= 0).any().any():
        raise CategoryTableError("every dispatched ('case') category needs positive urban and rural SLAs")
    if sla[~case].notna().any().any():
        raise CategoryTableError("categories that are not dispatched must leave the SLAs empty")
    if (out.loc[case, "sla_rural_min"] < out.loc[case, "sla_urban_min"]).any():
        raise CategoryTableError("a rural SLA shorter than the urban one")
    if (out["seriousness_weight"] < 0).any() or out["seriousness_weight"].isna().any():
        raise CategoryTableError("seriousness_weight must be a number ≥ 0")
    basis = out["basis_calls"]
    if basis.isna().any() or (basis < 0).any() or (basis != np.round(basis)).any():
        raise CategoryTableError("basis_calls must be whole numbers ≥ 0")
    out["basis_calls"] = basis.astype("int64")
    genuine = out["call_class"].isin(GENUINE_CLASSES)
    shares = out.loc[genuine, "share"]
    if shares.isna().any() or (shares < 0).any():
        raise CategoryTableError("every genuine category needs a share ≥ 0")
    if out.loc[~genuine, "share"].notna().any():
        raise CategoryTableError("hoax and dropped categories have no share among genuine calls")
    if abs(shares.sum() - 1.0) > SHARE_TOLERANCE:
        raise CategoryTableError(f"genuine shares sum to {shares.sum():.6f}, not 1")
    derived = out.loc[genuine, "basis_calls"] / out.loc[genuine, "basis_calls"].sum()
    if (derived - shares).abs().max() > SHARE_TOLERANCE:
        raise CategoryTableError("share differs from basis_calls / genuine basis_calls")
    return out


@cache
def _cached(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise CategoryTableError(f"category table not found: {path}")
    return validate_categories(pd.read_csv(path, dtype=str, keep_default_na=False,
                                           na_values=[""]))


def read_categories(path: Path | str) -> pd.DataFrame:
    """The validated category table of the CSV file ``path`` (a copy of the cached one), in
    file order.

    Columns: ``code, label, call_class, serious, sla_urban_min, sla_rural_min,
    related_group, seriousness_weight, basis_calls, share, peak_profile``; SLAs are
    minutes from call receipt to on scene (NaN where the category is not dispatched).
    Raises :class:`CategoryTableError` when the file is missing or breaks a rule.
    """
    return _cached(Path(path).resolve()).copy()
