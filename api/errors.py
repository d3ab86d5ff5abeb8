"""Application errors and the one mapping from every known error to an HTTP answer."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from api.request_ids import request_id
from jurisdictions.errors import JurisdictionsError, NoStationNearbyError, OutsidePunjabError

log = logging.getLogger("safecity.errors")


class AppError(Exception):
    """Base of errors raised by safecity services (never HTTP exceptions themselves)."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class BadInputError(AppError, ValueError):
    """The request is well-formed HTTP but its content cannot be used."""


class NotFoundError(AppError, LookupError):
    status = 404


class ConflictError(AppError):
    status = 409

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.extra = extra or {}


class UnavailableError(AppError):
    """A dependency (the database, the worker pool) cannot serve now: the client should
    retry after ``retry_after`` seconds."""

    status = 503
    retry_after = 5

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        if retry_after is not None:
            self.retry_after = retry_after


class DeadlineError(UnavailableError):
    """Heavy work did not finish within its endpoint's deadline and was stopped."""


class ClientGoneError(AppError):
    """The client closed the connection before the answer was ready; its work was stopped.

    Nobody reads the answer; 499 (nginx's "client closed request") marks it in logs."""

    status = 499


class UnauthorizedError(AppError):
    """No usable credentials: the client must authenticate (401 with a Bearer challenge)."""

    status = 401


class ForbiddenError(AppError):
    """Authenticated, but the role or the jurisdiction scope does not allow this."""

    status = 403


class UnprocessableError(AppError, ValueError):
    """Well-formed input that the domain cannot act on (a wrong timestamp, an unknown code)."""

    status = 422


def is_connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or anything it was raised from) means the database is unreachable.

    Drivers and SQLAlchemy wrap the same failure differently (``ConnectionRefusedError`` at
    connect, asyncpg's connection errors mid-query, SQLAlchemy's ``OperationalError`` /
    ``InterfaceError``, pool timeouts, and advanced-alchemy's wrapper around all of them),
    so the chain is walked rather than the outer type trusted.
    """
    from sqlalchemy import exc as sa_exc  # noqa: PLC0415

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa_exc.OperationalError | sa_exc.InterfaceError
                      | sa_exc.TimeoutError | ConnectionError | TimeoutError):
            return True
        module = type(current).__module__
        name = type(current).__name__
        if module.startswith("asyncpg") and ("Connection" in name or "CannotConnect" in name
                                             or name in {"InterfaceError", "AdminShutdownError",
                                                         "InternalClientError"}):
            return True
        if module.startswith("psycopg") and name in {"OperationalError", "InterfaceError"}:
            return True
        current = current.__cause__ or current.__context__
    return False


def _body(status: int, detail: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"status_code": status, "detail": detail, **(extra or {})}


def error_response(request: Request[Any, Any, Any], status: int, detail: str,
                   extra: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Response[Any]:
    """The one error body (status, detail, the request id), for handlers that answer an
    error of their own."""
    return Response({**_body(status, detail, extra), "request_id": request_id(request.scope)},
                    status_code=status, headers=headers)


def exception_to_http_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Map every error to HTTP, registered once on the app: the body names the request id
    that the answer's ``X-Request-ID`` also carries."""
    answer = _answer(request, exc)
    if isinstance(answer.content, dict):
        answer.content["request_id"] = request_id(request.scope)
    return answer


def _answer(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, UnavailableError):
        return Response(_body(exc.status, str(exc)), status_code=exc.status,
                        headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, UnauthorizedError):
        return Response(_body(exc.status, str(exc)), status_code=exc.status,
                        headers={"WWW-Authenticate": 'Bearer realm="safecity"'})
    if isinstance(exc, ConflictError):
        return Response(_body(exc.status, str(exc), exc.extra), status_code=exc.status)
    if isinstance(exc, AppError):
        return Response(_body(exc.status, str(exc)), status_code=exc.status)
    if isinstance(exc, ValidationException):
        return Response(_body(400, exc.detail, {"extra": exc.extra}), status_code=400)
    if isinstance(exc, OutsidePunjabError | NoStationNearbyError):
        return Response(_body(422, str(exc)), status_code=422)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return Response(_body(exc.status_code, exc.detail), status_code=exc.status_code,
                        headers=exc.headers)
    if isinstance(exc, JurisdictionsError):
        return Response(_body(400, str(exc)), status_code=400)
    if is_connection_failure(exc):
        return Response(_body(503, "the database is unreachable; retry (with the same "
                                   "Idempotency-Key for calls)"),
                        status_code=503, headers={"Retry-After": str(UnavailableError.retry_after)})
    return server_error(request, exc)


def server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A 500: logged with its stack trace and the request id (the answer names the id, not
    the error, which may hold data the caller should not see)."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    log.error("%s on %s %s (request_id=%s)", status, request.method, request.url.path,
              request_id(request.scope), exc_info=exc)
    headers = exc.headers if isinstance(exc, HTTPException) else None
    return Response(_body(status, "internal server error; quote the request_id when "
                                  "reporting it"), status_code=status, headers=headers)


def _database_errors() -> ExceptionHandlersMap:
    """Driver and repository errors routed through the mapping (503 when unreachable)."""
    from advanced_alchemy.exceptions import RepositoryError  # noqa: PLC0415
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    return {SQLAlchemyError: exception_to_http_response,
            RepositoryError: exception_to_http_response,
            ConnectionError: exception_to_http_response,
            TimeoutError: exception_to_http_response}


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    Exception: exception_to_http_response,  # Litestar's own errors, and any 500
    HTTPException: exception_to_http_response,
    AppError: exception_to_http_response,
    JurisdictionsError: exception_to_http_response,
    ValidationException: exception_to_http_response,
    **_database_errors(),
}
