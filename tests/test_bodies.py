"""Answers gzipped where they are made (a worker), not by the middleware on the loop that
takes calls: who gets gzip, and what the answer says about it."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import anyio
import pytest
from litestar import Litestar, Request, get
from litestar.testing import TestClient

from api.bodies import BODY_OPT, MINIMUM_SIZE, Body, body_job, takes_gzip
from api.domain.maps.assets import COMPRESSION


@get("/echo", sync_to_thread=False)
def _echo(request: Request[Any, Any, Any]) -> dict[str, bool]:
    return {"gzip": takes_gzip(request)}


@pytest.mark.parametrize(("header", "expected"), [
    ("gzip, deflate, br", True),
    ("br;q=1.0, gzip;q=0.8", True),
    ("GZIP", True),
    ("*", True),
    ("gzip;q=0", False),
    ("gzip;q=0.0, br", False),
    ("deflate, br", False),
    ("identity", False),
    ("", False),
    ("gzip;q=nonsense", False),
])
def test_takes_gzip_reads_accept_encoding(header: str, expected: bool) -> None:
    with TestClient(Litestar([_echo])) as client:
        assert client.get("/echo", headers={"Accept-Encoding": header}).json() == {"gzip": expected}


def test_a_body_is_gzipped_only_when_asked_and_large_enough() -> None:
    large = b'{"cells": [' + b"1," * MINIMUM_SIZE + b"1]}"
    packed = Body.made(large, True)
    assert packed.gzipped
    assert gzip.decompress(packed.data) == large
    assert len(packed.data) < len(large) / 10
    assert Body.made(large, False) == Body(large)
    assert Body.made(b"{}", True) == Body(b"{}")  # small: as it is
    assert Body.made("é" * MINIMUM_SIZE, False).data == ("é" * MINIMUM_SIZE).encode()
    assert body_job(True, lambda n: "x" * n, 2 * MINIMUM_SIZE).gzipped


@get("/body", opt=BODY_OPT, sync_to_thread=False)
def _body(request: Request[Any, Any, Any]) -> Any:
    text = '{"rows": [' + ",".join(str(i) for i in range(2000)) + "]}"
    return Body.made(text, takes_gzip(request)).response("application/json", {"Vary": "Accept"})


def test_a_wire_answer_is_gzipped_once_and_says_so() -> None:
    app = Litestar([_body], compression_config=COMPRESSION)
    with TestClient(app) as client:
        zipped = client.get("/body", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.headers["vary"] == "Accept, Accept-Encoding"
        assert zipped.json()["rows"][-1] == 1999  # one layer of gzip, not the middleware's too
        assert zipped.headers["content-type"] == "application/json"
        plain = client.get("/body", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.json() == zipped.json()


def test_static_files_are_gzipped_once_and_revalidated_by_etag() -> None:
    from api.domain.maps.assets import ASSET_ROUTES, STATIC_DIR
    from api.errors import EXCEPTION_HANDLERS

    deck = (STATIC_DIR / "vendor/deck.gl/dist.min.js").read_bytes()
    app = Litestar(ASSET_ROUTES, compression_config=COMPRESSION, exception_handlers=EXCEPTION_HANDLERS)
    with TestClient(app) as client:
        zipped = client.get("/static/vendor/deck.gl/dist.min.js", headers={"Accept-Encoding": "gzip"})
        assert zipped.status_code == 200
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == deck  # one layer of gzip
        assert int(zipped.headers["content-length"]) < len(deck) / 3
        assert "javascript" in zipped.headers["content-type"]
        assert zipped.headers["cache-control"] == "no-cache"
        plain = client.get("/static/vendor/deck.gl/dist.min.js", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.content == deck
        again = client.get("/static/vendor/deck.gl/dist.min.js",
                           headers={"If-None-Match": zipped.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""
        css = client.get("/static/maps/safecity-map.css")
        assert css.headers["content-type"].startswith("text/css")
        head = client.head("/static/maps/safecity-map.css")  # the same headers, no body
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["etag"] == css.headers["etag"]
        assert head.headers["content-length"] == css.headers["content-length"]
        assert client.head("/static/nothing.js").status_code == 404
        for outside in ("/static/../settings.py", "/static/%2e%2e/settings.py", "/static/nothing.js",
                        "/static/vendor", "/static/"):
            assert client.get(outside).status_code == 404, outside


def test_an_edited_static_file_is_served_as_it_now_is(tmp_path: Path) -> None:
    from api.domain.maps.assets import StaticAssets

    script = tmp_path / "app.js"
    script.write_text("let a = 1;" * 200)
    assets = StaticAssets(tmp_path)
    first = anyio.run(assets.get, "app.js")
    assert anyio.run(assets.get, "app.js") is first  # kept
    script.write_text("let b = 2;" * 300)
    again = anyio.run(assets.get, "app.js")
    assert again.raw == script.read_bytes()
    assert again.etag != first.etag
