"""``GET/POST /login``, ``POST /logout`` and the ``page_user``/``page_principal``
dependencies of every server-rendered page.

A page handler takes ``page_principal`` (an :class:`api.auth.Principal`, checked by the
same rules as a bearer token's) or ``page_user`` (that principal with the user's name,
area and CSRF token, for ``base.html``). Without a live session a page ``GET`` is
answered with a redirect to ``/login?next=…`` (an htmx request with 401 and
``HX-Redirect``); any other method must carry the session's CSRF token
(``X-CSRF-Token`` header or ``_csrf`` form field) or is refused 403. The JSON API never
reads the session cookie: it keeps taking bearer tokens only, so a page on another site
cannot make a browser call it, and it needs no CSRF token.

The sign-in form itself is protected by a double-submit token: ``GET /login`` sets it as
a cookie (path ``/login``, SameSite=Strict) and in the form; ``POST /login`` requires both
to match (no other site can make a browser sign in as the other site's account).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import Parameter
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap

from api.auth import Authenticator, Principal
from api.domain.accounts.services import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    AccountService,
    PageUser,
    SignInRefusedError,
    SignInRequiredError,
    require_csrf,
    same_site_path,
    template_context,
)
from api.errors import error_response
from api.pages import html_page, render

LOGIN_CSRF_COOKIE = "safecity_login_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _login_url(next_path: str) -> str:
    return "/login" if next_path in {"", "/"} else f"/login?next={quote(next_path, safe='/')}"


def _sign_in_required(request: Request[Any, Any, Any], exc: SignInRequiredError) -> Response[Any]:
    """A page ``GET``: to the sign-in form (back here afterwards); htmx: 401 telling it where."""
    target = _login_url(exc.next_path)
    if request.method in SAFE_METHODS and not request.headers.get("hx-request"):
        return Redirect(target, status_code=303, headers={"Cache-Control": "no-store"})
    return error_response(request, 401, "sign in first",
                          headers={"HX-Redirect": target, "Cache-Control": "no-store"})


SIGN_IN_HANDLERS: ExceptionHandlersMap = {SignInRequiredError: _sign_in_required}
"""Registered on the app (``api/app.py``): pages answer a missing session this way."""


def _secure(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


def _client_address(request: Request[Any, Any, Any]) -> str:
    """The client's address (behind a proxy, run uvicorn with ``--proxy-headers``)."""
    return request.client.host if request.client else "unknown"


async def provide_page_user(request: Request[Any, Any, Any], accounts: AccountService) -> PageUser:
    """The signed-in user of a page request (the ``page_user`` dependency); CSRF-checked
    when the request changes state."""
    token = request.cookies.get(SESSION_COOKIE)
    user = await accounts.page_user(token) if token else None
    if user is None:
        raise SignInRequiredError.at(request.url.path, request.url.query)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.content_type[0] in FORM_TYPES:
            value = (await request.form()).get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        require_csrf(user, sent)
    return user


async def provide_page_principal(request: Request[Any, Any, Any], accounts: AccountService,
                                 authenticator: Authenticator) -> Principal:
    """The ``page_principal`` dependency: who a page or a page fragment acts as (the API's
    own rules apply). A bearer token, which a browser never sends by itself, is taken as
    the API takes it (tools fetching a fragment); otherwise the signed-in session."""
    header = request.headers.get("authorization")
    if header:
        return authenticator.principal(header)
    return (await provide_page_user(request, accounts)).principal


def _login_page(accounts: AccountService, next_path: str, *, message: str | None = None,
                username: str = "", status: int = 200,
                headers: dict[str, str] | None = None) -> Response[str]:
    token = secrets.token_urlsafe(24)
    body = render("accounts/login.html", **template_context(
        None, message=message, login_csrf=token, next_path=next_path, username=username,
        lock_minutes=accounts.policy.lock_s // 60))
    cookie = Cookie(key=LOGIN_CSRF_COOKIE, value=token, path="/login", httponly=True,
                    samesite="strict", max_age=3600)
    return html_page(body, status=status, cookies=[cookie], headers=headers)


def _session_cookie(token: str | None, secure: bool) -> Cookie:
    """The session cookie (``None``: one that deletes it)."""
    return Cookie(key=SESSION_COOKIE, value=token or "", path="/", httponly=True, samesite="strict",
                  secure=secure, max_age=None if token else 0)


NextParam = Annotated[str | None, Parameter(query="next",
                                            description="Where to go after signing in (a path here)")]


class SignInController(Controller):
    """The sign-in form, signing in and signing out."""

    include_in_schema = False

    @get("/login", media_type="text/html")
    async def form(self, request: Request[Any, Any, Any], accounts: AccountService,
                   next_path: NextParam = None) -> Response[Any]:
        """The form (a signed-in browser goes straight on)."""
        target = same_site_path(next_path)
        token = request.cookies.get(SESSION_COOKIE)
        if token and await accounts.page_user(token) is not None:
            return Redirect(target, status_code=303)
        return _login_page(accounts, target)

    @post("/login", media_type="text/html", status_code=303)
    async def sign_in(self, request: Request[Any, Any, Any], accounts: AccountService) -> Response[Any]:
        """Right credentials: a new session and a redirect to ``next`` (or ``/``); wrong
        ones: the form again with one message that does not say which was wrong."""
        form = await request.form()

        def field(name: str) -> str:
            return str(form.get(name) or "")

        target, username = same_site_path(field("next")), field("username")[:64]
        expected = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not expected or not secrets.compare_digest(expected, field(CSRF_FIELD)):
            return _login_page(accounts, target, username=username, status=403,
                               message="The sign-in form had expired. Please sign in again.")
        try:
            signed = await accounts.sign_in(username, field("password"), _client_address(request))
        except SignInRefusedError as exc:
            retry = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
            return _login_page(accounts, target, message=str(exc), username=username,
                               status=exc.status, headers=retry)
        done = Cookie(key=LOGIN_CSRF_COOKIE, value="", path="/login", max_age=0, httponly=True,
                      samesite="strict")
        return Redirect(target, status_code=303, headers={"Cache-Control": "no-store"},
                        cookies=[_session_cookie(signed.token, _secure(request)), done])

    @post("/logout", status_code=303)
    async def sign_out(self, request: Request[Any, Any, Any], accounts: AccountService,
                       page_user: PageUser) -> Response[Any]:
        """End the session (CSRF-checked by ``page_user``) and go to the sign-in form."""
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await accounts.sign_out(token)
        return Redirect("/login", status_code=303, headers={"Cache-Control": "no-store"},
                        cookies=[_session_cookie(None, _secure(request))])
