"""``safecity forecast backtest|predict`` on events nobody here shaped: a CSV with its own
column names (from the project's generator, three months of one district), and a
GeoParquet with a point geometry only. JSON keys are the issue's contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli import app

pytestmark = pytest.mark.integration

DISTRICT = "PK633"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The generator's calls of one district, as a CSV with foreign column names and as a
    GeoParquet with only a geometry for position."""
    import geopandas as gpd

    from api.shipped import generate_calls

    calls, _ = generate_calls(3, 11, 0.003, "2024-01")
    calls = calls[calls["district_code"] == DISTRICT]
    folder = tmp_path_factory.mktemp("forecast-cli")
    csv = folder / "incidents.csv"
    (calls[["received_at", "lat", "lon", "category"]]
     .rename(columns={"received_at": "reported", "lat": "y", "lon": "x", "category": "kind"})
     .to_csv(csv, index=False))
    parquet = folder / "incidents.parquet"
    gpd.GeoDataFrame(calls[["received_at", "category"]], geometry=calls.geometry.values,
                     crs="EPSG:4326").to_parquet(parquet)
    return {"csv": csv, "parquet": parquet}


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_backtest_json_keys(history: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "backtest.json"
    result = invoke("forecast", "backtest", "--events", str(history["csv"]), "--lat", "y", "--lon", "x",
                    "--time", "reported", "--res", "8", "--period", "week", "--origins", "8",
                    "--coverage", "0.01,0.05,0.1", "--methods", "kde", "--methods", "prospective",
                    "--json", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["origins"] == 8
    assert isinstance(data["events"], int)
    assert data["events"] > 100
    assert isinstance(data["cells"], int)
    assert data["cells"] > 100
    assert set(data["methods"]) == {"naive", "historical_average", "kde", "prospective"}
    for scores in data["methods"].values():
        assert set(scores["hit_rate"]) == {"0.01", "0.05", "0.1"}
        assert set(scores["pai"]) == {"0.01", "0.05", "0.1"}
        for key, hit in scores["hit_rate"].items():  # PAI is hit rate over area share
            assert scores["pai"][key] == pytest.approx(hit / float(key), rel=0.05)
    assert data["selection"]["origins"] == data["scored_origins"]
    assert "kde" in result.output
    assert "historical_average" in result.output


@pytest.mark.parametrize("suffix", [".geojson", ".parquet", ".csv"])
def test_predict_writes_the_score_beside_the_forecast(history: dict[str, Path], tmp_path: Path,
                                                     suffix: str) -> None:
    import geopandas as gpd
    import pandas as pd

    out = tmp_path / f"risk{suffix}"
    result = invoke("forecast", "predict", "--events", str(history["parquet"]), "--area",
                    f"district:{DISTRICT}", "--res", "8", "--origins", "8", "--methods", "kde",
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out) if suffix == ".csv" else gpd.read_file(out) if suffix == ".geojson" \
        else gpd.read_parquet(out)
    assert len(frame) > 100
    assert frame["h3"].is_unique
    assert frame["method"].nunique() == 1
    method = frame["method"].iloc[0]
    assert method in {"naive", "historical_average", "kde"}
    assert frame["baseline"].iloc[0] in {"naive", "historical_average"}
    assert frame["baseline"].iloc[0] != method
    assert frame["method_pai"].iloc[0] > 0
    assert frame["baseline_pai"].iloc[0] > 0
    assert frame["beats_baselines"].iloc[0] == (method == "kde")
    assert (frame["origin"].astype(str).str[:10] == "2024-04-01").all()
    assert frame["risk"].sum() > 0
    if suffix == ".geojson":
        summary = json.loads(out.read_text())["forecast"]
        assert summary["method"] == method
        assert summary["selection"]["score"]["method"] == method
        assert summary["area"]["code"] == DISTRICT
        assert summary["reason"]


def test_predict_says_when_the_baseline_is_shown(history: dict[str, Path], tmp_path: Path) -> None:
    """Four origins cannot show a method beating anything: the baseline is shown, saying why."""
    out = tmp_path / "risk.csv"
    result = invoke("forecast", "predict", "--events", str(history["csv"]), "--lat", "y", "--lon", "x",
                    "--time", "reported", "--res", "8", "--origins", "4", "--out", str(out))
    assert result.exit_code == 0, result.output
    frame = __import__("pandas").read_csv(out)
    assert frame["method"].iloc[0] in {"naive", "historical_average"}
    assert not frame["beats_baselines"].any()
    assert "only 4 scored origins" in " ".join(result.output.split())


def test_predict_refuses_other_formats(history: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "risk.shp"
    result = invoke("forecast", "predict", "--events", str(history["csv"]), "--lat", "y", "--lon", "x",
                    "--time", "reported", "--res", "8", "--out", str(out))
    assert result.exit_code == 2
    assert not out.exists()


def test_missing_column_is_named(history: dict[str, Path]) -> None:
    result = invoke("forecast", "backtest", "--events", str(history["csv"]), "--res", "8")
    assert result.exit_code == 2
    assert "received_at" in result.output
