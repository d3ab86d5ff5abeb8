"""Application errors and the one mapping from every known error to an HTTP answer."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from jurisdictions.errors import JurisdictionsError, NoStationNearbyError, OutsidePunjabError


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
    """A dependency (the database) is down: the client should retry."""

    status = 503
    retry_after = 5


def _body(status: int, detail: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"status_code": status, "detail": detail, **(extra or {})}


def exception_to_http_response(_request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Map application and domain errors to HTTP, registered once on the app."""
    if isinstance(exc, UnavailableError):
        return Response(_body(exc.status, str(exc)), status_code=exc.status,
                        headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, ConflictError):
        return Response(_body(exc.status, str(exc), exc.extra), status_code=exc.status)
    if isinstance(exc, AppError):
        return Response(_body(exc.status, str(exc)), status_code=exc.status)
    if isinstance(exc, ValidationException):
        return Response(_body(400, exc.detail, {"extra": exc.extra}), status_code=400)
    if isinstance(exc, OutsidePunjabError | NoStationNearbyError):
        return Response(_body(422, str(exc)), status_code=422)
    if isinstance(exc, JurisdictionsError | ValueError):
        return Response(_body(400, str(exc)), status_code=400)
    if isinstance(exc, HTTPException):
        return Response(_body(exc.status_code, exc.detail), status_code=exc.status_code,
                        headers=exc.headers)
    raise exc


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    AppError: exception_to_http_response,
    JurisdictionsError: exception_to_http_response,
    ValidationException: exception_to_http_response,
}
