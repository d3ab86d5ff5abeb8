"""Every path a feed is served on delivers the same live event: SSE under ``/api/v1``,
WebSocket under ``/api/v1/ws/...`` and at the bare ``/ws/...`` aliases (same handlers),
with the same refusals on the aliases."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.callservice import LAHORE_POINT, LAHORE_STATION, Server, call_body, post_call, token

pytestmark = pytest.mark.integration

READ_TIMEOUT_S = 20.0
SHO = token("sho", LAHORE_STATION)
DPO = token("dpo", "PK617")

SOCKET_PATHS = [
    f"/api/v1/ws/stations/{LAHORE_STATION}?access_token={SHO}",
    f"/ws/stations/{LAHORE_STATION}?access_token={SHO}",
    f"/api/v1/ws/feeds/district/PK617?access_token={DPO}",
    f"/ws/feeds/district/PK617?access_token={DPO}",
    f"/ws/feeds/tehsil/PK61701?access_token={DPO}",
]
SSE_PATHS = [
    (f"/api/v1/stations/{LAHORE_STATION}/feed", SHO),
    ("/api/v1/feeds/district/PK617", DPO),
    ("/api/v1/feeds/region/LHR", token("rpo", "LHR")),
]


class SSEReader:
    """The ``data:`` of each event of one text/event-stream response."""

    def __init__(self, stack: ExitStack, server: Server, path: str, bearer: str) -> None:
        client = stack.enter_context(httpx.Client(base_url=server.url,
                                                  timeout=httpx.Timeout(30, read=READ_TIMEOUT_S)))
        self.response = stack.enter_context(
            client.stream("GET", path, headers={"Authorization": f"Bearer {bearer}"}))
        assert self.response.status_code == 200, self.response.read()
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self.lines = self.response.iter_lines()

    def subscribed(self) -> None:
        for line in self.lines:
            if line.startswith(":") and "subscribed" in line:
                return
        raise AssertionError("the stream ended before its subscription comment")

    def next_data(self) -> Any:
        for line in self.lines:
            if line.startswith("data:"):
                return json.loads(line.removeprefix("data:").strip())
        raise AssertionError("the stream ended")


def ws_url(server: Server, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def subscribed(socket: ClientConnection) -> None:
    hello = json.loads(socket.recv(timeout=READ_TIMEOUT_S))
    assert hello["type"] == "comment"
    assert hello["comment"].startswith("subscribed")


def test_every_feed_path_delivers_a_new_call(server: Server) -> None:
    with ExitStack() as stack:
        sockets = []
        for path in SOCKET_PATHS:
            socket = stack.enter_context(connect(ws_url(server, path), open_timeout=30))
            subscribed(socket)
            sockets.append((path, socket))
        streams = []
        for path, bearer in SSE_PATHS:
            reader = SSEReader(stack, server, path, bearer)
            reader.subscribed()
            streams.append((path, reader))
        with httpx.Client(base_url=server.url, timeout=30) as client:
            taken = post_call(client, call_body(*LAHORE_POINT, "fire"))
        assert taken.status_code == 201, taken.text
        call_id = taken.json()["id"]
        for path, socket in sockets:
            message = json.loads(socket.recv(timeout=READ_TIMEOUT_S))
            assert (message["type"], message["call"]["id"]) == ("received", call_id), path
        for path, reader in streams:
            message = reader.next_data()
            assert (message["type"], message["call"]["id"]) == ("received", call_id), path


@pytest.fixture
def refusal(server: Server) -> Callable[[str], int]:
    def close_code(path: str) -> int:
        with connect(ws_url(server, path), open_timeout=30) as socket, \
                pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=READ_TIMEOUT_S)
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code

    return close_code


@pytest.mark.parametrize("prefix", ["/api/v1", ""])
def test_refusals_are_the_same_on_both_paths(refusal: Callable[[str], int], prefix: str) -> None:
    assert refusal(f"{prefix}/ws/stations/{LAHORE_STATION}") == 4401
    assert refusal(f"{prefix}/ws/stations/{LAHORE_STATION}?access_token=junk") == 4401
    assert refusal(f"{prefix}/ws/stations/PK60101-001?access_token={SHO}") == 4403
    assert refusal(f"{prefix}/ws/feeds/province/PK6?access_token={DPO}") == 4403
    assert refusal(f"{prefix}/ws/feeds/district/PK617?access_token={token('planner')}") == 4403
    assert refusal(f"{prefix}/ws/feeds/galaxy/PK617?access_token={DPO}") == 4404
