"""Web sign-in on PostGIS through the app in this process: accounts (the real CLI and the
service), the form, sessions (cookie flags, idle and absolute expiry, sign-out), CSRF,
the throttle of failed sign-ins, disabled accounts, and a signed-in role seeing only its
own area on a page (the same :class:`api.auth.Principal` rules as the API)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.callservice import ServiceClient, headers, service_settings

PASSWORD = "correct-horse-battery"
DISTRICT, OTHER_DISTRICT = "PK617", "PK601"


class OffsetClock:
    """The real time plus an offset the tests move (sessions expire without waiting)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


CLOCK = OffsetClock()


@pytest.fixture(scope="module")
def client(loaded_postgis: str) -> Iterator[ServiceClient]:
    from api.container import Container

    with ServiceClient(Container(service_settings(loaded_postgis), clock=CLOCK)) as started:
        yield started


@pytest.fixture(autouse=True)
def _clock_and_cookies(client: ServiceClient) -> Iterator[None]:
    CLOCK.offset = timedelta()
    client.cookies.clear()
    yield
    CLOCK.offset = timedelta()
    client.cookies.clear()


def new_user(client: ServiceClient, role: str = "dpo", scope: str = DISTRICT) -> str:
    name = f"{role}.{uuid.uuid4().hex[:8]}"
    client.blocking_portal.call(client.container.accounts.add_user, name, PASSWORD, role, scope)
    return name


def form_token(client: ServiceClient, next_path: str | None = None) -> str:
    page = client.get("/login", params={"next": next_path} if next_path else None)
    assert page.status_code == 200
    found = re.search(r'name="_csrf" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def sign_in(client: ServiceClient, username: str, password: str = PASSWORD,
            next_path: str = "") -> Any:
    token = form_token(client)
    return client.post("/login", data={"_csrf": token, "username": username, "password": password,
                                       "next": next_path}, follow_redirects=False)


def session_cookie(answer: Any) -> str:
    cookies = [v for k, v in answer.headers.multi_items() if k == "set-cookie"
               and v.startswith("safecity_session=")]
    assert len(cookies) == 1, answer.headers
    return cookies[0]


def map_status(client: ServiceClient, code: str) -> int:
    """A page behind the session: the calls map of a district (scope checked before drawing)."""
    answer = client.get("/maps/calls", params={"level": "district", "code": code, "res": 6},
                        headers={"Accept": "text/html"}, follow_redirects=False)
    return answer.status_code


def csrf_of(client: ServiceClient) -> str:
    """The session's CSRF token as a page carries it (the base layout's meta tag)."""
    page = client.get("/login", follow_redirects=True)  # a signed-in browser goes on
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    if found is None:
        return client.blocking_portal.call(_csrf_from_db, client)
    return found.group(1)


async def _csrf_from_db(client: ServiceClient) -> str:
    token = client.cookies.get("safecity_session")
    assert token
    user = await client.container.accounts.page_user(token)
    assert user is not None
    return user.csrf_token


# --------------------------------------------------------------------------- accounts


def test_users_cli_adds_lists_and_disables(loaded_postgis: str) -> None:
    env = {**os.environ, "DATABASE_URL": loaded_postgis}
    name = f"cli.{uuid.uuid4().hex[:8]}"

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api.cli", "users", *args], input=stdin,
                              env=env, capture_output=True, text=True, check=False)

    added = cli("add", name, "--role", "sho", "--scope", "PK61701-007", "--password-stdin",
                stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    wrong_level = cli("add", f"{name}x", "--role", "dpo", "--scope", "PK61701-007",
                      "--password-stdin", stdin=PASSWORD + "\n")
    assert wrong_level.returncode != 0
    assert "a dpo scope must be a district" in wrong_level.stderr + wrong_level.stdout
    assert cli("disable", name).returncode == 0
    line = next(row for row in cli("list").stdout.splitlines() if row.startswith(name + "\t"))
    assert "\tsho\tstation PK61701-007\tdisabled\t" in line


def test_passwords_are_stored_as_argon2id_hashes(client: ServiceClient) -> None:
    from api.db.accounts import user_by_name

    name = new_user(client)

    async def stored() -> str:
        async with client.container.sessions() as session:
            record = await user_by_name(session, name)
            assert record is not None
            return record.password_hash

    hashed = client.blocking_portal.call(stored)
    assert hashed.startswith("$argon2id$")
    assert PASSWORD not in hashed


# --------------------------------------------------------------------------- the form


def test_the_form_names_its_fields_and_button(client: ServiceClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert '<label for="username">Username</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert '<button type="submit">Sign in</button>' in page.text
    login_cookie = page.headers["set-cookie"]
    assert "HttpOnly" in login_cookie
    assert "SameSite=strict" in login_cookie
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_right_credentials_open_a_session_with_strict_cookie(client: ServiceClient) -> None:
    name = new_user(client)
    answer = sign_in(client, name, next_path=f"/maps/calls?level=district&code={DISTRICT}")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/maps/calls?level=district&code={DISTRICT}"
    cookie = session_cookie(answer)
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here; over https it is Secure (next test)
    token = cookie.split(";")[0].split("=", 1)[1]
    assert len(token) >= 40
    user = client.blocking_portal.call(client.container.accounts.page_user, token)
    assert user is not None
    assert user.principal.role == "dpo"
    assert user.principal.scope == DISTRICT


def test_over_https_the_cookie_is_secure(client: ServiceClient) -> None:
    name = new_user(client)
    page = client.get("https://127.0.0.1/login")
    token = re.search(r'name="_csrf" value="([^"]+)"', page.text)
    assert token
    answer = client.post("https://127.0.0.1/login", follow_redirects=False, data={
        "_csrf": token.group(1), "username": name, "password": PASSWORD})
    assert answer.status_code == 303
    assert "Secure" in session_cookie(answer)


def test_next_never_leaves_the_site(client: ServiceClient) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"):
        client.cookies.clear()
        answer = sign_in(client, new_user(client), next_path=target)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/", target


def test_wrong_credentials_say_so_without_saying_which(client: ServiceClient) -> None:
    name = new_user(client)
    wrong_password = sign_in(client, name, "not-the-password")
    unknown_user = sign_in(client, f"nobody.{uuid.uuid4().hex[:6]}", PASSWORD)
    for answer in (wrong_password, unknown_user):
        assert answer.status_code == 401
        assert "Wrong username or password." in answer.text
        assert "safecity_session=" not in answer.headers.get("set-cookie", "")
        assert 'role="alert"' in answer.text
    strip = lambda text: re.sub(r'value="[^"]*"', "", text)  # noqa: E731
    assert strip(wrong_password.text) == strip(unknown_user.text)


def test_the_form_without_its_token_is_refused(client: ServiceClient) -> None:
    name = new_user(client)
    client.get("/login")
    answer = client.post("/login", data={"username": name, "password": PASSWORD},
                         follow_redirects=False)
    assert answer.status_code == 403
    assert "safecity_session=" not in answer.headers.get("set-cookie", "")


# --------------------------------------------------------------------------- throttle


def test_repeated_failures_are_slowed_then_locked(client: ServiceClient) -> None:
    policy = client.container.accounts.policy
    name = new_user(client)
    started = time.monotonic()
    for _ in range(policy.user_lock_after):
        assert sign_in(client, name, "wrong-wrong-wrong").status_code == 401
    slowed = time.monotonic() - started
    expected = sum(min(policy.max_delay_s, policy.delay_step_s * (n - policy.slow_after + 1))
                   for n in range(policy.slow_after, policy.user_lock_after + 1))
    assert slowed >= expected * 0.95
    locked = sign_in(client, name)  # the right password, but the username is locked
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    assert int(locked.headers["retry-after"]) > 60
    assert "safecity_session=" not in locked.headers.get("set-cookie", "")
    CLOCK.offset = timedelta(seconds=policy.lock_s + 5)
    assert sign_in(client, name).status_code == 303


def test_many_failures_from_one_address_lock_it(client: ServiceClient) -> None:
    from api.db.accounts import clear_throttle
    from api.domain.accounts.services import SignInPolicy

    async def clear() -> None:
        async with client.container.sessions() as session:
            await clear_throttle(session, "addr:testclient")

    accounts = client.container.accounts
    kept = accounts.policy
    client.blocking_portal.call(clear)  # earlier tests' failures from this address
    accounts.policy = SignInPolicy(address_lock_after=3, slow_after=100)
    try:
        good = new_user(client)
        for _ in range(3):  # three different usernames, one address
            assert sign_in(client, f"guess.{uuid.uuid4().hex[:6]}", "wrong-wrong").status_code == 401
        assert sign_in(client, good).status_code == 429
    finally:
        accounts.policy = kept
        client.blocking_portal.call(clear)
    assert sign_in(client, good).status_code == 303


# --------------------------------------------------------------------------- sessions


def test_sign_out_needs_the_csrf_token_and_ends_the_session(client: ServiceClient) -> None:
    name = new_user(client)
    assert sign_in(client, name).status_code == 303
    assert map_status(client, OTHER_DISTRICT) == 403  # signed in (scope refused, not sign-in)
    refused = client.post("/logout", follow_redirects=False)
    assert refused.status_code == 403
    refused = client.post("/logout", data={"_csrf": "forged"}, follow_redirects=False)
    assert refused.status_code == 403
    assert map_status(client, OTHER_DISTRICT) == 403  # still signed in
    out = client.post("/logout", data={"_csrf": csrf_of(client)}, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert "Max-Age=0" in session_cookie(out)
    token = client.cookies.get("safecity_session")
    client.cookies.clear()
    if token:  # the old token is dead on the server too, whatever the browser kept
        client.cookies.set("safecity_session", token)
    assert map_status(client, OTHER_DISTRICT) == 303


def test_the_csrf_header_is_accepted_like_the_field(client: ServiceClient) -> None:
    assert sign_in(client, new_user(client)).status_code == 303
    out = client.post("/logout", headers={"X-CSRF-Token": csrf_of(client)}, follow_redirects=False)
    assert out.status_code == 303


def test_idle_sessions_expire(client: ServiceClient) -> None:
    policy = client.container.accounts.policy
    assert sign_in(client, new_user(client)).status_code == 303
    CLOCK.offset = timedelta(seconds=policy.idle_s - 120)
    assert map_status(client, OTHER_DISTRICT) == 403  # used: idle time starts again
    CLOCK.offset += timedelta(seconds=policy.idle_s - 120)
    assert map_status(client, OTHER_DISTRICT) == 403
    CLOCK.offset += timedelta(seconds=policy.idle_s + 1)
    answer = client.get("/maps/calls", params={"level": "district", "code": DISTRICT},
                        headers={"Accept": "text/html"}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=/maps/calls%3F")


def test_sessions_end_after_their_lifetime_even_when_used(client: ServiceClient) -> None:
    policy = client.container.accounts.policy
    assert sign_in(client, new_user(client)).status_code == 303
    step = timedelta(seconds=policy.idle_s - 60)
    while CLOCK.offset + step < timedelta(seconds=policy.session_s):
        CLOCK.offset += step
        assert map_status(client, OTHER_DISTRICT) == 403
    CLOCK.offset = timedelta(seconds=policy.session_s + 1)
    assert map_status(client, OTHER_DISTRICT) == 303


def test_disabled_users_lose_their_sessions_and_cannot_sign_in(client: ServiceClient) -> None:
    name = new_user(client)
    assert sign_in(client, name).status_code == 303
    client.blocking_portal.call(client.container.accounts.disable_user, name)
    assert map_status(client, OTHER_DISTRICT) == 303
    client.cookies.clear()
    refused = sign_in(client, name)
    assert refused.status_code == 401
    assert "Wrong username or password." in refused.text


# --------------------------------------------------------------------------- scope


def test_a_signed_in_role_sees_only_its_area(client: ServiceClient) -> None:
    """The same scope rule as a token's: the district's own map opens, a neighbour's is 403."""
    assert sign_in(client, new_user(client, "dpo", DISTRICT)).status_code == 303
    assert map_status(client, OTHER_DISTRICT) == 403
    assert map_status(client, DISTRICT) == 200
    province = client.get("/maps/calls", params={"level": "province"}, follow_redirects=False)
    assert province.status_code == 403


def test_the_api_keeps_bearer_tokens_and_ignores_the_session(client: ServiceClient) -> None:
    assert sign_in(client, new_user(client, "dpo", DISTRICT)).status_code == 303
    assert client.get("/api/v1/calls").status_code == 401  # the session cookie is not a token
    client.cookies.clear()
    assert client.get("/api/v1/calls", headers=headers("dpo", DISTRICT)).status_code == 200


# --------------------------------------------------------------------------- the console

SHO_STATION, OTHER_STATION = "PK61701-007", "PK61701-003"


def test_the_console_is_the_shos_own_station_only(client: ServiceClient) -> None:
    assert sign_in(client, new_user(client, "sho", SHO_STATION)).status_code == 303
    page = client.get("/console")
    assert page.status_code == 200
    assert "<h2 id=\"calls-title\">Open calls</h2>" in page.text
    assert 'name="csrf-token"' in page.text
    for name in ("Acknowledge", "Dispatch", "En route", "On scene", "Close", "Transfer"):
        assert f'"{name}"' in page.text  # the buttons' names, in the page's state
    other = client.get("/console", params={"station": OTHER_STATION})
    assert other.status_code == 403
    assert client.get("/console/feed", params={"station": OTHER_STATION}).status_code == 403


def test_console_buttons_need_the_csrf_token_and_use_the_calls_service(client: ServiceClient) -> None:
    from tests.callservice import LAHORE_POINT, post_call

    posted = post_call(client, {"lat": LAHORE_POINT[0], "lon": LAHORE_POINT[1], "category": "fire"})
    assert posted.status_code == 201, posted.text
    call = posted.json()
    station = call["station_code"]
    assert sign_in(client, new_user(client, "sho", station)).status_code == 303
    url = f"/console/calls/{call['id']}/events"
    assert client.post(url, json={"type": "acknowledged"}).status_code == 403
    assert client.post(url, json={"type": "acknowledged"},
                       headers={"X-CSRF-Token": "forged"}).status_code == 403
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/console").text)
    assert token
    done = client.post(url, json={"type": "acknowledged"}, headers={"X-CSRF-Token": token.group(1)})
    assert done.status_code == 201, done.text
    assert done.json()["status"] == "acknowledged"
    again = client.post(url, json={"type": "acknowledged"}, headers={"X-CSRF-Token": token.group(1)})
    assert again.status_code == 409  # the API's state machine
    events = client.get(f"/api/v1/calls/{call['id']}/events", headers=headers("sho", station)).json()
    assert [e["type"] for e in events] == ["received", "acknowledged"]
    assert events[-1]["actor"].startswith("user:sho.")


# --------------------------------------------------------------------------- planner pages


def test_planner_pages_run_a_plan_in_scope_with_the_csrf_token(client: ServiceClient) -> None:
    from tests.callservice import LAHORE_POINT, post_call

    for _ in range(3):  # demand in the tehsil
        assert post_call(client, {"lat": LAHORE_POINT[0], "lon": LAHORE_POINT[1],
                                  "category": "dacoity_robbery"}).status_code == 201
    assert sign_in(client, new_user(client, "dpo", DISTRICT)).status_code == 303
    page = client.get("/plans")
    assert page.status_code == 200
    assert '<h2 id="run-title">Run a plan</h2>' in page.text
    assert '<h2 id="ranking-title">Tehsils by need</h2>' in page.text
    ranked = re.findall(r"<td>\d+</td><td>[^<]+ \((PK6\d+)\)</td>", page.text)
    assert ranked  # the district's tehsils had calls above
    assert all(code.startswith(DISTRICT) for code in ranked)  # ranked province-wide, shown in scope
    offered = set(re.findall(r'<option value="(PK6\d+)">', page.text))
    assert "PK61701" in offered
    assert all(code.startswith(DISTRICT) for code in offered)  # only the DPO's district
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token
    form = {"tehsil": "PK61701", "model": "mclp", "sites": "2", "radius_m": "500"}
    assert client.post("/plans", data=form, follow_redirects=False).status_code == 403
    outside = client.post("/plans", data={**form, "tehsil": "PK60101", "_csrf": token.group(1)},
                          follow_redirects=False)
    assert outside.status_code == 403  # the plans service's scope rule, shown on the page
    assert "The plan was not started" in outside.text
    started = client.post("/plans", data={**form, "_csrf": token.group(1)}, follow_redirects=False)
    assert started.status_code == 303, started.text
    plan_page = client.get(started.headers["location"])
    assert plan_page.status_code == 200
    assert "Plan for " in plan_page.text
    assert re.search(r"State: (queued|running|succeeded)", plan_page.text)
    api = client.get(f"/api/v1{started.headers['location']}", headers=headers("dpo", DISTRICT))
    assert api.json()["created_by"].startswith("user:dpo.")  # the same plans service


def test_roles_without_plans_are_refused_the_planner_pages(client: ServiceClient) -> None:
    assert sign_in(client, new_user(client, "sho", "PK61701-007")).status_code == 303
    assert client.get("/plans").status_code == 403
