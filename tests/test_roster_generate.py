"""``safecity roster generate``: a stand-in roster for every station around the present,
so a demo's calls are delivered to an on-duty SHO and none comes back unstaffed."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from api.cli.roster import COLUMNS, demo_roster
from jurisdictions.sources import PROJECT_DATA
from tests.callservice import ATTOCK_POINT, LAHORE_POINT, ROOT, call_body, headers, post_call

NAMES = pd.read_csv(PROJECT_DATA / "officer_names.csv", dtype=str)
STATIONS = ["PK60101-001", "PK61701-007", "PK63301-002"]


def test_every_station_is_covered_without_gaps_from_yesterday_to_the_days_ahead() -> None:
    now = datetime(2026, 12, 6, 2, 30, tzinfo=UTC)  # 07:30 in Pakistan: still the night shift
    roster = demo_roster(STATIONS, NAMES, now, days=2)
    assert tuple(roster.columns) == COLUMNS
    assert sorted(roster["station_code"].unique()) == STATIONS
    for _, shifts in roster.groupby("station_code"):
        start = pd.to_datetime(shifts["start"], format="ISO8601")
        end = pd.to_datetime(shifts["end"], format="ISO8601")
        assert (start.iloc[1:].to_numpy() == end.iloc[:-1].to_numpy()).all()  # back to back
        assert start.min() == pd.Timestamp("2026-12-05T08:00:00+05:00")
        assert end.max() == pd.Timestamp("2026-12-08T08:00:00+05:00")
        assert start.min() < pd.Timestamp(now) - pd.Timedelta(hours=12)
        assert set(shifts["rank"]) == {"Inspector", "Sub-Inspector"}
        # the same two officers hold the station's day and night shifts
        assert shifts.groupby("rank")["officer_name"].nunique().tolist() == [1, 1]
    given = set(NAMES.loc[NAMES["part"] == "given", "name"])
    family = set(NAMES.loc[NAMES["part"] == "family", "name"])
    for name in roster["officer_name"].unique():
        assert any(name == f"{g} {f}" for g in given for f in family), name
    assert roster["phone"].str.fullmatch(r"0399\d{7}").all()
    again = demo_roster(STATIONS, NAMES, now + timedelta(days=3), days=2)
    assert again.groupby("station_code")["officer_name"].apply(set).equals(
        roster.groupby("station_code")["officer_name"].apply(set))  # stable across runs
    assert roster.groupby("station_code")["officer_name"].apply(frozenset).nunique() > 1


@pytest.mark.integration
def test_after_generate_no_station_is_unstaffed(fresh_postgis_url: str) -> None:
    from api.container import Container
    from tests.callservice import ServiceClient, service_settings
    from tests.conftest import load_jurisdictions

    url = load_jurisdictions(fresh_postgis_url)
    made = subprocess.run([sys.executable, "-m", "api.cli", "roster", "generate", "--days", "1"],
                          cwd=ROOT, env={**os.environ, "DATABASE_URL": url},
                          capture_output=True, text=True, check=False, timeout=600)
    assert made.returncode == 0, made.stderr[-3000:]
    assert "for 720 stations" in " ".join(made.stderr.split())  # the console is stderr
    with ServiceClient(Container(service_settings(url))) as client:
        for point in (LAHORE_POINT, ATTOCK_POINT):
            answer = post_call(client, call_body(*point, at=datetime.now(UTC)))
            assert answer.status_code == 201, answer.text
            call = answer.json()
            assert call["unstaffed"] is False, call
            duty = client.get(f"/api/v1/stations/{call['station_code']}/on-duty",
                              headers=headers("admin"))
            assert duty.status_code == 200, duty.text
            assert duty.json()["on_duty"]["rank"] in ("Inspector", "Sub-Inspector")
