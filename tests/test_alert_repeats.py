"""The repeat rule's batch matching equals the rule written out for one call at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import h3.api.basic_int as h3_int
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.db.call_models import CELL_RES, NEAR_RING
from api.domain.alerts.rules import (
    AlertPolicy,
    RepeatCalls,
    RepeatGroup,
    repeat_alerts,
    repeat_members,
)
from geo.distance import haversine_m

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, tzinfo=UTC).timestamp()


def _table(ids: list[str], t: list[float], lat: list[float], lon: list[float],
           phones: list[str | None]) -> RepeatCalls:
    return RepeatCalls(ids=np.array(ids, dtype=object), t=np.array(t, dtype=np.float64),
                       lat=np.array(lat, dtype=np.float64), lon=np.array(lon, dtype=np.float64),
                       cells=np.array([h3_int.latlng_to_cell(a, b, CELL_RES)
                                       for a, b in zip(lat, lon, strict=True)], dtype=np.uint64),
                       phones=np.array(phones, dtype=object))


@st.composite
def _calls(draw: st.DrawFn, prefix: str, size: int) -> RepeatCalls:
    n = draw(st.integers(0, size))
    coords = st.tuples(st.floats(31.5, 31.506), st.floats(74.3, 74.306))  # ~600 m square
    points = draw(st.lists(coords, min_size=n, max_size=n))
    t = draw(st.lists(st.floats(0, 3 * 86_400), min_size=n, max_size=n))
    phones = draw(st.lists(st.sampled_from([None, "0300", "0301", "0302"]), min_size=n, max_size=n))
    return _table([f"{prefix}{i}" for i in range(n)], [T0 + x for x in t],
                  [p[0] for p in points], [p[1] for p in points], phones)


@settings(max_examples=150, deadline=None)
@given(calls=_calls("c", 12), earlier=_calls("e", 40), shared=st.booleans())
def test_batch_matching_equals_the_rule_for_one_call(calls: RepeatCalls, earlier: RepeatCalls,
                                                     shared: bool) -> None:
    policy = AlertPolicy()
    # the stored calls include the batch's own (a call never repeats itself)
    others = earlier if not shared or not len(calls) else RepeatCalls(
        *(np.concatenate([getattr(earlier, f), getattr(calls, f)])
          for f in ("ids", "t", "lat", "lon", "cells", "phones")))
    location, caller = repeat_members(calls, others, policy, ring=NEAR_RING)
    window = policy.repeat_window.total_seconds()
    for i in range(len(calls)):
        within = ((others.t >= calls.t[i] - window) & (others.t <= calls.t[i])
                  & (others.ids != calls.ids[i]))
        close = haversine_m(calls.lat[i], calls.lon[i], others.lat, others.lon) <= policy.repeat_radius_m
        assert location[i].tolist() == np.flatnonzero(within & close).tolist()
        same = (others.phones == calls.phones[i]) if calls.phones[i] is not None \
            else np.zeros(len(others), bool)
        assert caller[i].tolist() == np.flatnonzero(within & same).tolist()


def test_no_others_and_no_calls() -> None:
    policy = AlertPolicy()
    one = _table(["a"], [T0], [31.5], [74.3], ["0300"])
    none = _table([], [], [], [], [])
    assert repeat_members(none, one, policy, ring=NEAR_RING) == ([], [])
    location, caller = repeat_members(one, none, policy, ring=NEAR_RING)
    assert [x.tolist() for x in location] == [[]]
    assert [x.tolist() for x in caller] == [[]]


def test_a_call_outside_the_window_or_radius_is_no_member() -> None:
    policy = AlertPolicy()
    day = timedelta(hours=24).total_seconds()
    call = _table(["new"], [T0 + day + 10], [31.5], [74.3], ["0300"])
    others = _table(["old", "near", "far", "same-number-far"],
                    [T0, T0 + day, T0 + day, T0 + day],
                    [31.5, 31.5004, 31.51, 31.6], [74.3, 74.3, 74.3, 74.3],
                    ["0300", None, None, "0300"])
    location, caller = repeat_members(call, others, policy, ring=NEAR_RING)
    assert location[0].tolist() == [1]  # "old" is 10 s past the window; "far" is 1.1 km away
    assert caller[0].tolist() == [3]


def test_a_group_is_keyed_by_and_addressed_to_its_earliest_call() -> None:
    policy = AlertPolicy()
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    first = {"station": "PS-1", "tehsil": "T", "district": "D", "region": "R", "province": "PB"}
    groups = [RepeatGroup("location", ["a", "b"], first), RepeatGroup("caller", ["c"], first)]
    [alert] = repeat_alerts("new", at, groups, policy)  # "caller" has 2 calls of the 3 needed
    assert alert.dedup_key == "repeat:location:a"
    assert alert.call_ids == ["a", "b", "new"]
    assert alert.path == first
    assert alert.level == policy.repeat_level
    assert alert.due_at == at
    assert alert.summary == "3 calls within 100 m in 24 h (station PS-1)"
    assert repeat_alerts("new", at, [RepeatGroup("location", ["a"], first)], policy) == []
