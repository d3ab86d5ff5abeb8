"""``safecity users``: the accounts that sign in to the web pages (``docs/web.md``)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from api.cli.progress import console

if TYPE_CHECKING:
    from api.domain.accounts.services import AccountService

app = typer.Typer(help="Web sign-in accounts: add, list, disable.", no_args_is_help=True)
T = TypeVar("T")


def _run(work: Callable[[AccountService], Awaitable[T]]) -> T:
    """``work`` on an account service over the configured database (the same service the
    web pages use), its engine disposed afterwards; service errors become usage errors."""
    import asyncio  # noqa: PLC0415
    from datetime import UTC, datetime  # noqa: PLC0415

    from sqlalchemy.ext.asyncio import async_sessionmaker  # noqa: PLC0415

    from api.areas import Areas  # noqa: PLC0415
    from api.boundaries import current_boundaries  # noqa: PLC0415
    from api.db.engine import async_engine  # noqa: PLC0415
    from api.domain.accounts.services import AccountService  # noqa: PLC0415
    from api.errors import AppError  # noqa: PLC0415
    from api.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    areas = Areas(current_boundaries(settings))

    async def main() -> T:
        engine = async_engine(settings)
        try:
            service = AccountService(async_sessionmaker(engine, expire_on_commit=False),
                                     lambda: areas, lambda: datetime.now(UTC))
            return await work(service)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except AppError as exc:
        raise typer.BadParameter(str(exc)) from exc


@app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Lower-case letters, digits, '.', '_', '-'")],
    role: Annotated[str, typer.Option(help="call_taker, sho, dpo, cpo, rpo, ig, planner or admin")],
    scope: Annotated[str, typer.Option(help="Code of the area the user acts for (PK6 = Punjab)")] = "PK6",
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input")] = False,
) -> None:
    """Add an account; the scope code must exist at the role's level (as for `safecity token`)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    account = _run(lambda service: service.add_user(username, password, role, scope))
    console.print(f"added {account.username}: {account.role} of {account.scope_level} "
                  f"{account.scope_code}")


@app.command("list")
def list_users() -> None:
    """Every account: username, role, scope, whether disabled, last sign-in."""
    accounts = _run(lambda service: service.list_users())
    for a in accounts:
        last = a.last_sign_in_at.isoformat(timespec="seconds") if a.last_sign_in_at else "never"
        typer.echo(f"{a.username}\t{a.role}\t{a.scope_level} {a.scope_code}\t"
                   f"{'disabled' if a.disabled else 'enabled'}\tlast sign-in {last}")


@app.command("disable")
def disable(username: Annotated[str, typer.Argument(help="The account to disable")]) -> None:
    """Disable an account: it cannot sign in, and its open sessions end now."""
    _run(lambda service: service.disable_user(username))
    console.print(f"disabled {username}; its sessions are ended")
