"""``safecity token``: mint a bearer token for an operator or a test.

Fast on purpose (a demo prints one per role): the scope's level is read from the database
with one plain query (:mod:`api.tokens`); the boundary set is loaded only when the
embedded database was never loaded, as the service itself then serves the shipped set.
"""

from __future__ import annotations

from typing import Annotated

import typer


def token(
    role: Annotated[str, typer.Option(help="call_taker, sho, dpo, cpo, rpo, ig, planner or admin")],
    scope: Annotated[str, typer.Option(help="Code of the area the holder acts for (PK6 = Punjab)")] = "PK6",
    subject: Annotated[str | None, typer.Option(help="Who holds it (e.g. a badge number)")] = None,
    ttl_hours: Annotated[float, typer.Option(min=0.01, max=24 * 30, help="Lifetime, hours")] = 12.0,
) -> None:
    """Print a JWT signed with SAFECITY_JWT_SECRET, or else with the local secret file
    (.safecity/jwt-secret, created once); the scope code must exist at the role's level."""
    from api.settings import get_settings  # noqa: PLC0415
    from api.tokens import SecretFileError, mint_token, signing_secret  # noqa: PLC0415

    settings = get_settings()
    try:
        secret = signing_secret(settings.jwt_secret, settings.jwt_secret_file)
    except SecretFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="environment") from exc
    level = scope_level(scope)
    if level is None:
        raise typer.BadParameter(f"no area has code {scope!r}", param_hint="--scope")
    try:
        value = mint_token(secret, role, scope, level, subject=subject, ttl_s=int(ttl_hours * 3600))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role/--scope") from exc
    typer.echo(value)


def scope_level(code: str) -> str | None:
    """The level of area ``code`` in the boundary set the service serves (None: no such area)."""
    from api.settings import get_settings  # noqa: PLC0415
    from api.tokens import stored_area_level  # noqa: PLC0415

    database = get_settings().database
    try:
        return stored_area_level(code, database.url, database.sqlite_path)
    except LookupError:
        pass  # no set in the database: the service's own fallback decides (shipped set or error)
    from api.areas import Areas  # noqa: PLC0415
    from api.boundaries import current_boundaries  # noqa: PLC0415

    area = Areas(current_boundaries()).find(code)
    return area.level if area is not None else None
