"""``safecity token``: mint a bearer token for an operator or a test."""

from __future__ import annotations

from typing import Annotated

import typer


def token(
    role: Annotated[str, typer.Option(help="call_taker, sho, dpo, cpo, rpo, ig, planner or admin")],
    scope: Annotated[str, typer.Option(help="Code of the area the holder acts for (PK6 = Punjab)")] = "PK6",
    subject: Annotated[str | None, typer.Option(help="Who holds it (e.g. a badge number)")] = None,
    ttl_hours: Annotated[float, typer.Option(min=0.01, max=24 * 30, help="Lifetime, hours")] = 12.0,
) -> None:
    """Print a JWT signed with SAFECITY_JWT_SECRET; the scope code must exist at the role's level."""
    from api.areas import Areas  # noqa: PLC0415
    from api.auth import mint_token  # noqa: PLC0415
    from api.boundaries import current_boundaries  # noqa: PLC0415
    from api.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    if not settings.jwt_secret:
        raise typer.BadParameter("SAFECITY_JWT_SECRET is not set", param_hint="environment")
    area = Areas(current_boundaries(settings)).find(scope)
    if area is None:
        raise typer.BadParameter(f"no area has code {scope!r}", param_hint="--scope")
    try:
        value = mint_token(settings.jwt_secret, role, area.code, area.level, subject=subject,
                           ttl_s=int(ttl_hours * 3600))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role/--scope") from exc
    typer.echo(value)
