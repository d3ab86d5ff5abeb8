"""A history that ends now: ``synth calls --end`` cuts the generated months at a time, so
a demo's recent windows hold calls and the calls running at that time are still open."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from api.cli.synth import parse_end
from geo.synth.generate import LIFECYCLE_COLUMNS, history_start

END = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)  # 14:30 in Pakistan, mid-month


def test_the_end_names_the_months_before_it() -> None:
    assert history_start(END, 1) == "2026-03"
    assert history_start(END, 6) == "2025-10"
    # 21:00 UTC on the last day of a month is already the next month in Pakistan (UTC+5)
    assert history_start(datetime(2026, 1, 31, 21, 0, tzinfo=UTC), 2) == "2026-01"
    with pytest.raises(ValueError, match="aware"):
        history_start(datetime(2026, 3, 1), 1)


def test_end_accepts_now_a_date_or_an_rfc3339_time() -> None:
    now = datetime(2026, 12, 6, 10, 49, 14, 123, tzinfo=UTC)
    assert parse_end("now", now) == datetime(2026, 12, 6, 10, 49, tzinfo=UTC)
    assert parse_end("2026-12-06") == datetime(2026, 12, 5, 19, 0, tzinfo=UTC)  # PKT midnight
    assert parse_end("2026-12-06T12:00:00+05:00") == datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
    assert parse_end("2026-12-06T07:00:00Z") == datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
    for bad in ("yesterday", "2026-12-06T07:00:00"):
        with pytest.raises(typer.BadParameter):
            parse_end(bad)


@pytest.mark.slow
def test_a_history_cut_at_its_end_is_the_full_history_as_it_stood_then() -> None:
    from api.shipped import generate_calls

    cut, truth = generate_calls(1, 7, 0.01, end=END)
    full, _ = generate_calls(1, 7, 0.01, start="2026-03")
    end = pd.Timestamp(END)
    assert len(cut)
    assert cut["received_at"].max() < end
    assert cut["received_at"].min() >= pd.Timestamp("2026-02-28T19:00:00Z")  # 1 March, PKT
    assert len(full) > len(cut) == int((full["received_at"] < end).sum())
    # the same calls; what happened after the end has not happened yet
    same = full.iloc[: len(cut)].reset_index(drop=True)
    pd.testing.assert_series_equal(cut["call_id"].reset_index(drop=True), same["call_id"])
    for column in LIFECYCLE_COLUMNS:
        later = same[column] >= end
        assert cut[column].reset_index(drop=True)[later].isna().all(), column
        kept = ~later & same[column].notna()
        assert (cut[column].reset_index(drop=True)[kept] == same[column][kept]).all(), column
    open_calls = cut["closed_at"].isna()
    assert truth["counts"]["open_at_end"] == int(open_calls.sum()) > 0
    assert cut.loc[open_calls, "received_at"].min() > end - pd.Timedelta(days=1)
    # the truth speaks only of calls in the file
    assert truth["counts"]["calls"] == len(cut)
    assert truth["end_utc"] == end.isoformat() == truth["period_utc"][1]
    ids = set(cut["call_id"].tolist())
    for spot in truth["hotspots"]:
        assert set(spot["call_ids"]) <= ids
        assert sum(spot["planted_calls"].values()) == len(spot["call_ids"])
    for fault in truth["faults"].values():
        assert set(fault["call_ids"]) <= ids
    assert sum(truth["counts"]["by_category"].values()) == len(cut)


@pytest.mark.slow
def test_the_cli_makes_a_history_that_ends_this_minute(tmp_path: Path) -> None:
    from api.cli import app

    out, truth = tmp_path / "calls.parquet", tmp_path / "truth.json"
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    made = CliRunner().invoke(app, ["synth", "calls", "--months", "2", "--seed", "3", "--scale",
                                    "0.004", "--end", "now", "--out", str(out), "--truth",
                                    str(truth)])
    assert made.exit_code == 0, made.output
    frame = pd.read_parquet(out, columns=["received_at", "closed_at"])
    end = datetime.fromisoformat(json.loads(truth.read_text())["end_utc"])
    assert before <= end <= datetime.now(UTC)
    assert frame["received_at"].max() < pd.Timestamp(end)
    assert frame["received_at"].max() > pd.Timestamp(end) - pd.Timedelta(hours=3)  # recent
    span = pd.Timestamp(end) - frame["received_at"].min()
    assert timedelta(days=28) < span.to_pytimedelta() < timedelta(days=62)
    both = CliRunner().invoke(app, ["synth", "calls", "--months", "1", "--seed", "3", "--start",
                                    "2024-01", "--end", "now", "--out", str(out)])
    assert both.exit_code != 0
    assert "not both" in both.output
